/**
 * The coordination store, as an interface. SQLite is the first implementation
 * (src/store/sqlite); a PostgreSQL one must be able to pass the same conformance
 * suite (test/store/conformance.ts). Nothing here names better-sqlite3.
 *
 * Every method takes one params object and is async. Writes that need a live lease
 * are named `…IfLeased` and report whether the lease held (`{ ok: false, code:
 * "LEASE_LOST" }`) instead of throwing from inside the database.
 */
import type { ErrorObject } from "../errors.js";
import type { RetryPolicy } from "../policy/retry.js";
import type { StoreEventBus } from "./events.js";
import type { EconomicsService } from "./economics.js";
import type { HumanService, ScheduleService, UiReadService, WhyService } from "./operator-types.js";
import type { AgentService, MaintenanceService, PersonaService, TaskService } from "./service-types.js";

// The services' own types live by concern; this module stays the one place to import the store's types from.
export * from "./service-types.js";
export * from "./operator-types.js";
export * from "./transition-types.js";

export const TASK_STATES = [
  "waiting",
  "pending",
  "claimed",
  "in_progress",
  "completed",
  "failed",
  "cancelled",
  "blocked",
  /** A task of a `human` persona, parked until a person approves or rejects it (no lease, no attempt). */
  "awaiting_approval",
  /** An attempt asked a question (ctx.askHuman, `::roster:ask`): parked, lease released, attempt not counted, until answered. */
  "awaiting_input",
] as const;
export type TaskState = (typeof TASK_STATES)[number];
export const TERMINAL_STATES: readonly TaskState[] = ["completed", "failed", "cancelled"];
export const LEASED_STATES: readonly TaskState[] = ["claimed", "in_progress"];
/** Parked for a person: they need attention, not a worker. */
export const PARKED_STATES: readonly TaskState[] = ["awaiting_approval", "awaiting_input"];

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A persona as stored: its front matter (validated elsewhere) and its definition. */
export interface PersonaRecord {
  id: string;
  name: string;
  /** The markdown body: the persona's definition / system prompt. */
  definition: string;
  /** The validated front matter as JSON (adapter, concurrency, leaseMs, timeoutMs, retry …). */
  config: Record<string, unknown>;
  /** File it was last synced from; null when it came from elsewhere. */
  sourcePath: string | null;
  /** True while its file was present at the last sync. */
  filePresent: boolean;
  createdAt: number;
  updatedAt: number;
  /** Epoch ms it was retired (`roster personas retire`), or null while in service. */
  retiredAt: number | null;
}

export interface PersonaUpsert {
  id: string;
  name: string;
  definition: string;
  config: Record<string, unknown>;
  sourcePath: string | null;
}

/** Per-task overrides of the persona's policy. */
export interface TaskPolicyOverride {
  maxAttempts?: number;
  backoff?: RetryPolicy["backoff"];
  baseMs?: number;
  maxMs?: number;
  jitter?: number;
  timeoutMs?: number;
  /** This task's budget over all its attempts (docs/economics.md): the claim skips it once spent. */
  maxCostUsd?: number;
  maxTokens?: number;
  /** Tasks sharing this key (a repository, a file scope) run at most concurrencyLimit (default 1) at once, across every process. */
  concurrencyKey?: string;
  concurrencyLimit?: number;
}

/** One task of an enqueue batch, as accepted at every boundary (CLI plan files, MCP). */
export interface TaskInput {
  /** Local name inside the batch, so other tasks of the batch can depend on it. */
  ref?: string;
  persona: string;
  title: string;
  description?: string;
  /** Local refs of this batch, or ids of existing tasks. */
  dependsOn?: Array<string | number>;
  priority?: number;
  payload?: Json;
  maxAttempts?: number;
  /** Per-task overrides of the persona's retry policy and timeout. */
  policy?: TaskPolicyOverride;
  /** Delay before the task becomes ready, in ms. */
  delayMs?: number;
  /** An enqueue with a key that exists returns the existing task instead of a new one. */
  idempotencyKey?: string;
}

export interface EnqueueParams {
  tasks: TaskInput[];
  /** Parent of every task of the batch (decomposition). */
  parentId?: number | null;
  createdBy?: string | null;
  now: number;
}

export interface EnqueueResult {
  /** New ids in input order. */
  ids: number[];
  /** ref → id for the tasks that had a ref. */
  refs: Record<string, number>;
}

export interface DependencyResult {
  id: number;
  title: string;
  persona: string;
  status: TaskState;
  result: Json | null;
}

/** What a worker receives when it claims a task. */
export interface ClaimedTask {
  id: number;
  title: string;
  description: string;
  persona: string;
  payload: Json | null;
  priority: number;
  parentId: number | null;
  attempt: number;
  maxAttempts: number;
  leaseToken: string;
  leaseExpiresAt: number;
  leaseMs: number;
  timeoutMs: number;
  /** When the task became ready (enqueue or last dependency done, or retry run_at). */
  readyAt: number;
  claimedAt: number;
  /** Results of its direct dependencies, so a reviewer sees what was produced. */
  dependencies: DependencyResult[];
  /** Questions earlier attempts asked a person, with the answers; only present when there are some. */
  inputs?: HumanInput[];
  /** How the last failed attempt ended (task_status.last_error), so this one can continue where it stopped; only present after a failure. */
  previous?: PreviousAttempt;
}

/** The last failed attempt's stored error: an agent CLI's keeps its session id and its worktree's saved work in `details`. */
export interface PreviousAttempt {
  code: string;
  message: string;
  retryable: boolean;
  details?: Record<string, unknown>;
}

/** A question an attempt asked and the person's answer, as the next attempt sees it. */
export interface HumanInput {
  question: string;
  answer: string;
  /** The attempt that asked. */
  attempt: number | null;
  askedAt: number;
  answeredAt: number;
  answeredBy: string | null;
}

export interface TaskRecord {
  id: number;
  title: string;
  description: string;
  persona: string;
  payload: Json | null;
  parentId: number | null;
  rootId: number;
  createdBy: string | null;
  priority: number;
  idempotencyKey: string | null;
  createdAt: number;
  policy: RetryPolicy;
  timeoutMs: number;
  status: TaskState;
  unmetDependencies: number;
  runAt: number;
  attempts: number;
  maxAttempts: number;
  assignedAgentId: string | null;
  /**
   * The lease's renewal stamp (docs/ARCHITECTURE.md, "Liveness"): its holder's last renewal
   * (or claim) plus `leaseMs`, on the holder's clock (PostgreSQL: the server's). Not a
   * deadline anyone enforces: a judge reaps the lease once it has seen the stamp stand
   * still for `leaseMs`. Null when the task holds no lease.
   */
  leaseExpiresAt: number | null;
  /** The current (or last) lease's length, in ms: the last renewal was at `leaseExpiresAt - leaseMs`. */
  leaseMs: number | null;
  claimedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  progress: number | null;
  progressMessage: string | null;
  result: Json | null;
  error: ErrorObject | null;
  updatedAt: number;
  dependsOn: number[];
}

export interface TaskEvent {
  id: number;
  taskId: number | null;
  type: string;
  at: number;
  agentId: string | null;
  attempt: number | null;
  data: Json | null;
}

export interface TaskDetail extends TaskRecord {
  dependencies: DependencyResult[];
  dependents: Array<{ id: number; title: string; persona: string; status: TaskState }>;
  children: Array<{ id: number; title: string; persona: string; status: TaskState }>;
  events: TaskEvent[];
}

export interface ListTasksParams {
  status?: TaskState | TaskState[];
  persona?: string;
  parentId?: number;
  /** Only the subtree (by parent links) under this root task. */
  rootId?: number;
  /** Return tasks with id > afterId (cursor pagination). */
  afterId?: number;
  /** 0 for all. */
  limit?: number;
  /** Highest ids first (default: oldest first). */
  newestFirst?: boolean;
}

export interface Store {
  readonly tasks: TaskService;
  readonly agents: AgentService;
  readonly personas: PersonaService;
  readonly maintenance: MaintenanceService;
  /** Usage, budgets, provider pauses, breakers, rate limits (src/store/economics.ts). */
  readonly economics: EconomicsService;
  /** Approvals and questions parked for a person. */
  readonly humans: HumanService;
  /** Recurring tasks from cron expressions. */
  readonly schedules: ScheduleService;
  /** Why a task is not running. */
  readonly why: WhyService;
  /** Dashboard reads (src/ui): task pages behind a cursor, throughput; optional, the dashboard falls back without it. */
  readonly ui?: UiReadService;
  /** In-process notifications, emitted after each commit. */
  readonly events: StoreEventBus;
  /**
   * True when another connection (process) has written since the last call. Cheap.
   * `wakeUpsOnly`: the caller acts only on writes after which this process may have work to
   * claim or a lease of its own may have ended (the supervisor's waker), so a store whose
   * watch delivers exactly those while it is up may answer from the watch alone: PostgreSQL
   * while it LISTENs (every such write NOTIFYs), where other hosts' heartbeats, progress and
   * settles that ready nothing would otherwise wake every idle supervisor for every persona.
   */
  hasExternalChanges(options?: { wakeUpsOnly?: boolean }): Promise<boolean>;
  /**
   * Calls `onChange` soon after another process may have written (a file watch, for
   * SQLite on the database's folder), so a waiting reader need not poll to react
   * within milliseconds. A hint only: it may fire for the store's own writes, more
   * than once for one write (again a few ms later, in case the write was not yet
   * visible at the first call), or not at all (in-memory databases, file systems
   * without change notification), so
   * callers confirm with hasExternalChanges() and keep a slower poll. Returns a
   * function that stops the watch; close() stops every watch.
   */
  watchExternalChanges(onChange: () => void): () => void;
  /**
   * PostgreSQL: the database server's clock minus this host's (config.clockOffsetMs
   * included), and the round trip it was measured over, in ms; systemClock follows
   * the server's clock while the store is open. Absent on SQLite (one machine, one clock).
   */
  clockOffset?(): { hostOffsetMs: number; rttMs: number };
  close(): Promise<void>;
}

export interface StoreOptions {
  /** Path of the database file, or ":memory:". */
  path: string;
  /** "NORMAL" (default) or "FULL". */
  synchronous?: "NORMAL" | "FULL";
  /** How long a writer waits for the lock before SQLITE_BUSY, in ms. Default 5000. */
  busyTimeoutMs?: number;
  /** Largest payload or result, in bytes of JSON. Default 1 MiB. */
  maxPayloadBytes?: number;
  /** Open read-only (status commands). */
  readonly?: boolean;
  /** Directory of NNNN_name.sql files; defaults to the package's migrations/. */
  migrationsDir?: string;
  /**
   * The monotonic clock (ms, any origin) on which this process judges other holders'
   * liveness: a lease is dead once its renewal stamp stood still for leaseMs of it.
   * Default performance.now; tests pass their manual clock.
   */
  monotonic?: () => number;
  /** Called when a transient SQLITE_BUSY is retried. */
  onBusyRetry?: (attempt: number) => void;
  /** Called with the duration of each write transaction, in ms. */
  onTransaction?: (name: string, durationMs: number) => void;
}
