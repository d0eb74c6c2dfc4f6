/**
 * Every message that crosses between the main thread and the pool's worker
 * threads, in one file (docs/ARCHITECTURE.md, style notes). Only plain data crosses: errors travel as
 * ErrorObject `{ name, code, message, stack, retryable }` and are rebuilt with
 * fromErrorObject. Worker threads never touch SQLite; they get tasks as data and
 * hand back outcomes.
 *
 *   main → worker   RunBatchRequest   (piscina task: one or more tasks to run)
 *   main → worker   WarmUpRequest     (piscina task, one per thread at start: load the adapters)
 *   worker → main   WarmUpResponse    (piscina result: this thread is up, its adapters loaded)
 *   worker → main   RunBatchResponse  (piscina result: one outcome per task)
 *   worker → main   WorkerReport      (parentPort: progress, logs, an attempt's
 *                                      running usage, and with reportEach each
 *                                      outcome as it settles)
 *   main → workers  ControlMessage    (BroadcastChannel: abort these attempts, by run id)
 *   worker → main   threadId in WorkerInit.threadSlots[request.slot] (shared memory)
 */
import type { AdapterPersona, AdapterTask } from "../adapters/types.js";
import type { ErrorObject } from "../errors.js";
import type { AttemptUsage } from "../store/economics.js";
import type { DatabaseIdentity, TaskInput } from "../store/types.js";

/** workerData of every pool thread: what does not change while the pool lives. */
export interface WorkerInit {
  /** Every persona the supervisor serves, so a task names its persona by id only. */
  personas: AdapterPersona[];
  /** Absolute path of the personas folder (module adapters may not escape it). */
  personasDir: string;
  allowAbsoluteModules: boolean;
  maxPayloadBytes: number;
  /** The database the tasks come from (AdapterEnvironment.database). */
  database?: DatabaseIdentity;
  /** Name of the BroadcastChannel on which the main thread sends ControlMessages. */
  controlChannel: string;
  /** Minimum spacing of progress reports per task from a worker, in ms. */
  progressIntervalMs: number;
  /** Log levels at or above this are forwarded ("silent" forwards none). */
  logLevel: string;
  /**
   * Int32 slots, one per batch in flight: a worker writes its threadId into the
   * batch's slot when it receives it, so the main thread knows which thread to
   * terminate when a task there will not stop.
   */
  threadSlots: SharedArrayBuffer;
}

/** One task as a worker sees it: the adapter's view plus the persona id. */
export type WorkerTask = AdapterTask;

export interface RunBatchRequest {
  /** Unique per message while the pool lives: outcomes reported ahead name it, so they cannot be taken for a later attempt's. */
  batchId: number;
  /** Index into WorkerInit.threadSlots. */
  slot: number;
  tasks: WorkerTask[];
  /**
   * One per task, unique while the pool lives: the attempt's address. Aborts name
   * run ids, never task ids, so an abort meant for one attempt can never reach the
   * same task's next attempt (docs/ARCHITECTURE.md, rule 12).
   */
  runIds: number[];
  /**
   * The definitions of this batch's personas, once any persona changed since the
   * pool started (hot reload): a thread replaces its copy and reloads the adapter
   * when one differs. Absent while workerData's copy is current.
   */
  personas?: AdapterPersona[];
  /**
   * Post each task's outcome (REPORT_OUTCOME) as soon as it settles, so a task that
   * shares a message with slower ones is not held back by them. The response still
   * carries every outcome: it travels on piscina's own port and may arrive first.
   */
  reportEach?: boolean;
}

/**
 * Sent to each thread as the pool starts (WorkerPool.ready): the thread loads every persona's
 * adapter and answers with its id. A thread cannot load them on its own at start: between
 * piscina's messages it sleeps in Atomics.wait, so its event loop, which a module's import
 * needs, turns only while it holds a message.
 */
export interface WarmUpRequest {
  warmUp: true;
}

export interface WarmUpResponse {
  threadId: number;
}

export function isWarmUpRequest(value: RunBatchRequest | WarmUpRequest): value is WarmUpRequest {
  return (value as { warmUp?: unknown }).warmUp === true;
}

export type TaskOutcome =
  /** `resultJson`: the result's JSON text, made once by the worker (src/adapters/output.ts) and stored as it is. */
  | { taskId: number; ok: true; resultJson: string; children?: TaskInput[]; usage?: AttemptUsage }
  | { taskId: number; ok: false; error: ErrorObject; aborted: boolean; usage?: AttemptUsage };

export interface RunBatchResponse {
  outcomes: TaskOutcome[];
}

export const REPORT_PROGRESS = "roster:progress";
export const REPORT_LOG = "roster:log";
export const REPORT_OUTCOME = "roster:outcome";
export const REPORT_USAGE = "roster:usage";
export const REPORT_ABORT_SEEN = "roster:abort-seen";

/**
 * Outcomes sent ahead of their batch's response (RunBatchRequest.reportEach): those
 * that settled in the same turn of the worker's event loop travel together. The
 * pool consumes them.
 */
export type OutcomeReport = { type: typeof REPORT_OUTCOME; outcomes: Array<{ batchId: number; outcome: TaskOutcome }> };

/** Progress and logs of one attempt, addressed by its run id (RunBatchRequest.runIds). */
export type WorkerReport =
  | { type: typeof REPORT_PROGRESS; runId: number; taskId: number; attempt: number; fraction: number; message: string | null }
  | { type: typeof REPORT_LOG; runId: number; taskId: number; attempt: number; level: "debug" | "info" | "warn" | "error"; message: string; data?: Record<string, unknown> }
  /**
   * What the attempt has spent so far (its running total, not an increment): sent
   * while it runs, at most once per turn of the worker's event loop per attempt, so
   * the main thread can check it against the task's and goal's budgets
   * (src/supervisor/budget-watch.ts). The latest report replaces the earlier ones.
   */
  | { type: typeof REPORT_USAGE; runId: number; taskId: number; attempt: number; total: AttemptUsage };

/**
 * The thread holding these attempts received their abort (each time it is sent again, every
 * ABORT_RESEND_MS): its event loop turns, so an adapter still stopping there is not a hung
 * thread. The pool consumes it (src/pool/pool.ts, terminate).
 */
export type AbortSeenReport = { type: typeof REPORT_ABORT_SEEN; runIds: number[] };

export function isAbortSeenReport(value: unknown): value is AbortSeenReport {
  return value !== null && typeof value === "object" && (value as { type?: unknown }).type === REPORT_ABORT_SEEN;
}

export const CONTROL_ABORT = "roster:abort";

/** Abort these attempts (RunBatchRequest.runIds). */
export type ControlMessage = { type: typeof CONTROL_ABORT; runIds: number[]; reason: ErrorObject };

export function isWorkerReport(value: unknown): value is WorkerReport {
  if (value === null || typeof value !== "object") return false;
  const type = (value as { type?: unknown }).type;
  return type === REPORT_PROGRESS || type === REPORT_LOG || type === REPORT_USAGE;
}

export function isOutcomeReport(value: unknown): value is OutcomeReport {
  return value !== null && typeof value === "object" && (value as { type?: unknown }).type === REPORT_OUTCOME;
}

export function isControlMessage(value: unknown): value is ControlMessage {
  return value !== null && typeof value === "object" && (value as { type?: unknown }).type === CONTROL_ABORT;
}
