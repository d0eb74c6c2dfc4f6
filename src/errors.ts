/**
 * Every error roster raises on purpose is a RosterError with a stable string code.
 * Callers branch on `code`, never on message text. Errors cross thread and process
 * boundaries as plain objects (see `toErrorObject` / `fromErrorObject`).
 */
export const ERROR_CODES = [
  "VALIDATION",
  "PERSONA_NOT_FOUND",
  "PERSONA_INVALID",
  "TASK_NOT_FOUND",
  "DEPENDENCY_NOT_FOUND",
  "DEPENDENCY_CYCLE",
  "SELF_DEPENDENCY",
  "DUPLICATE_REF",
  "PAYLOAD_TOO_LARGE",
  "INVALID_STATE",
  "LEASE_LOST",
  /** The reaper found a lease past its expiry without a heartbeat (stored as a task's last error; the attempt counts). */
  "LEASE_EXPIRED",
  "AGENT_NOT_FOUND",
  "MIGRATION_CHANGED",
  "DATABASE_TOO_NEW",
  "DATABASE_INVALID",
  "DATABASE_BUSY",
  "DATABASE_READONLY",
  /** The database path cannot hold a database: its folder does not exist, it is a folder, or a part of it is a file. */
  "DATABASE_PATH_INVALID",
  /** The disk (or filesystem) holding the database has no room left for the write or for the -wal/-shm files. */
  "DISK_FULL",
  /** Reading or writing the database file failed at the operating system (SQLITE_IOERR) for a reason other than a full disk. */
  "DATABASE_IO",
  "CONFIG_INVALID",
  "ADAPTER_NOT_FOUND",
  "ADAPTER_FAILED",
  "ADAPTER_OUTPUT_INVALID",
  "TIMEOUT",
  "ABORTED",
  "WORKER_CRASHED",
  "SHUTDOWN",
  /** The store in use does not implement this yet (a PostgreSQL store's economics, humans, schedules: issue 19). */
  "NOT_SUPPORTED",
  "INTERNAL",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

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
    details: error instanceof RosterError ? error.details : undefined,
  };
}

export function fromErrorObject(object: ErrorObject): RosterError {
  const code = (ERROR_CODES as readonly string[]).includes(object.code) ? (object.code as ErrorCode) : "ADAPTER_FAILED";
  const error = new RosterError(code, object.message, { retryable: object.retryable, details: object.details });
  error.name = object.name;
  if (object.stack !== undefined) error.stack = object.stack;
  return error;
}
