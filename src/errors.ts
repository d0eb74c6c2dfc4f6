/**
 * Every error roster raises on purpose is a RosterError with a stable string code.
 * Callers branch on `code`, never on message text. Errors cross thread and process
 * boundaries as plain objects (see `toErrorObject` / `fromErrorObject`).
 */
/**
 * Every error code, with the exit status of the CLI when a command ends with it:
 * 2 when the input was wrong (a flag, a plan file, a persona file, a --db path that
 * cannot hold a database, a task id that does not exist), 1 when something failed
 * that the input did not cause (the database is busy, full, read-only, of another
 * program or a newer roster; an adapter failed). One table, so a code cannot exist
 * without its class.
 */
export const ERRORS = {
  VALIDATION: { exit: 2 },
  PERSONA_NOT_FOUND: { exit: 2 },
  PERSONA_INVALID: { exit: 2 },
  TASK_NOT_FOUND: { exit: 2 },
  DEPENDENCY_NOT_FOUND: { exit: 2 },
  DEPENDENCY_CYCLE: { exit: 2 },
  SELF_DEPENDENCY: { exit: 2 },
  DUPLICATE_REF: { exit: 2 },
  PAYLOAD_TOO_LARGE: { exit: 2 },
  INVALID_STATE: { exit: 2 },
  LEASE_LOST: { exit: 1 },
  /** The reaper found a lease past its expiry without a heartbeat (stored as a task's last error; the attempt counts). */
  LEASE_EXPIRED: { exit: 1 },
  /**
   * The MCP sessions that held a task ended while holding it (their clients exited, crashed or were
   * stopped) as many times as the task may lose leases (src/store/lost-leases.ts): it failed for good.
   */
  AGENT_LEFT: { exit: 1 },
  AGENT_NOT_FOUND: { exit: 2 },
  MIGRATION_CHANGED: { exit: 1 },
  DATABASE_TOO_NEW: { exit: 1 },
  DATABASE_INVALID: { exit: 1 },
  DATABASE_BUSY: { exit: 1 },
  DATABASE_READONLY: { exit: 1 },
  /** The database path cannot hold a database: its folder does not exist, it is a folder, or a part of it is a file. */
  DATABASE_PATH_INVALID: { exit: 2 },
  /** The disk (or filesystem) holding the database has no room left for the write or for the -wal/-shm files. */
  DISK_FULL: { exit: 1 },
  /** Reading or writing the database file failed at the operating system (SQLITE_IOERR) for a reason other than a full disk. */
  DATABASE_IO: { exit: 1 },
  CONFIG_INVALID: { exit: 2 },
  ADAPTER_NOT_FOUND: { exit: 1 },
  ADAPTER_FAILED: { exit: 1 },
  ADAPTER_OUTPUT_INVALID: { exit: 1 },
  TIMEOUT: { exit: 1 },
  ABORTED: { exit: 1 },
  WORKER_CRASHED: { exit: 1 },
  SHUTDOWN: { exit: 1 },
  /**
   * A running attempt's reported usage reached its task's or goal's budget: the supervisor aborted it, and
   * the store records its usage and gives the attempt back uncounted while the budget holds the task.
   */
  BUDGET_EXHAUSTED: { exit: 1 },
  /** The store in use does not implement this yet (a PostgreSQL store's economics, humans, schedules: issue 19). */
  NOT_SUPPORTED: { exit: 1 },
  /** `roster db copy`: the target already holds tasks or other history (or, for SQLite, a file is already there); it is left as it was. */
  TARGET_NOT_EMPTY: { exit: 2 },
  /** `roster db copy`: a supervisor or worker looks alive on the source (a recent heartbeat, a lease not past its stamp). */
  SOURCE_IN_USE: { exit: 1 },
  /** `roster db copy`: the target refused a row the source holds (a value it cannot store); the whole copy was rolled back. */
  COPY_ROW_REFUSED: { exit: 1 },
  INTERNAL: { exit: 1 },
} as const satisfies Record<string, { exit: 1 | 2 }>;

export type ErrorCode = keyof typeof ERRORS;

/** Every error code, in the order of ERRORS. */
export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export interface RosterErrorOptions {
  cause?: unknown;
  /** Whether a failed attempt with this error may be retried. Defaults to true. */
  retryable?: boolean;
  /** Machine-readable context: the offending field, task ref, cycle path … */
  details?: Record<string, unknown>;
}

export class RosterError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: RosterErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "RosterError";
    this.code = code;
    this.retryable = options.retryable ?? true;
    this.details = options.details;
  }
}

/** A fenced write found that the caller's lease is no longer current. */
export class LeaseLostError extends RosterError {
  constructor(taskId: number, options: RosterErrorOptions = {}) {
    super("LEASE_LOST", `lease lost on task ${taskId}: it was reaped, cancelled or claimed by another agent`, {
      ...options,
      retryable: false,
      details: { taskId, ...options.details },
    });
    this.name = "LeaseLostError";
  }
}

export function isRosterError(value: unknown, code?: ErrorCode): value is RosterError {
  return value instanceof RosterError && (code === undefined || value.code === code);
}

/** The one way a `catch (e)` turns an unknown into an Error. */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === "string") return new RosterError("INTERNAL", value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return new RosterError("INTERNAL", `non-Error value thrown: ${text}`, { details: { thrown: text } });
}

/** The plain shape in which errors cross threads, processes and the database. */
export interface ErrorObject {
  name: string;
  code: string;
  message: string;
  stack?: string | undefined;
  retryable: boolean;
  details?: Record<string, unknown> | undefined;
}

export function toErrorObject(value: unknown): ErrorObject {
  const error = coerceError(value);
  const code = error instanceof RosterError ? error.code : ((error as { code?: unknown }).code as string | undefined);
  const explicitRetryable = (error as { retryable?: unknown }).retryable;
  return {
    name: error.name,
    code: typeof code === "string" ? code : "ADAPTER_FAILED",
    message: error.message,
    stack: error.stack,
    retryable: typeof explicitRetryable === "boolean" ? explicitRetryable : true,
    details: error instanceof RosterError ? error.details : plainDetails((error as { details?: unknown }).details),
  };
}

/** How much of a thrown Error's own `details`, as JSON, crosses to the store; past it only the provider-limit fields do. */
export const ERROR_DETAILS_MAX_CHARS = 16_384;

/**
 * The `details` of an Error that is not roster's own (a module adapter's: docs/economics.md,
 * "Provider limits"), as JSON keeps them: a plain copy a structured clone accepts (the worker
 * thread's outcome crosses to the main thread as one) and the database can hold. Functions and
 * the like drop out as JSON drops them; details JSON refuses, or longer than
 * ERROR_DETAILS_MAX_CHARS, keep only `failure`, `retryAfterMs` and `resetAt`, and say why.
 */
function plainDetails(value: unknown): Record<string, unknown> | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  let text: string | undefined;
  let why: string;
  try {
    text = JSON.stringify(value);
    why = `over ${ERROR_DETAILS_MAX_CHARS} characters as JSON`;
  } catch (error) {
    why = `not JSON: ${(error as Error).message}`;
  }
  if (text !== undefined && text.length <= ERROR_DETAILS_MAX_CHARS) return JSON.parse(text) as Record<string, unknown>;
  const d = value as { failure?: unknown; retryAfterMs?: unknown; resetAt?: unknown };
  return {
    ...(typeof d.failure === "string" ? { failure: d.failure.slice(0, 100) } : {}),
    ...(typeof d.retryAfterMs === "number" ? { retryAfterMs: d.retryAfterMs } : {}),
    ...(typeof d.resetAt === "number" ? { resetAt: d.resetAt } : {}),
    detailsDropped: why,
  };
}

export function fromErrorObject(object: ErrorObject): RosterError {
  const code = (ERROR_CODES as readonly string[]).includes(object.code) ? (object.code as ErrorCode) : "ADAPTER_FAILED";
  const error = new RosterError(code, object.message, { retryable: object.retryable, details: object.details });
  error.name = object.name;
  if (object.stack !== undefined) error.stack = object.stack;
  return error;
}
