import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { RosterError, type ErrorObject } from "../errors.js";
import type { TaskOutcome, WorkerInit, WorkerReport, WorkerTask } from "./protocol.js";

/**
 * The worker pool's bounds, options and bookkeeping types (src/pool/pool.ts holds the
 * pool itself), split from pool.ts by concern.
 */

/** After an abort, how long an adapter gets to settle before its thread is terminated, in ms. */
export const ABORT_GRACE_MS_DEFAULT = 2_000;
/**
 * How long a thread may go without answering an abort (REPORT_ABORT_SEEN, sent again every
 * ABORT_RESEND_MS) before it is taken for blocked (a synchronous spin) and terminated, in ms;
 * at least the grace. A starved machine stretches a thread's synchronous steps (loading a
 * module, spawning a process) to seconds: under load 20 on 2 cores a thread that answered
 * every 100 ms otherwise went quiet for over 2 s. Terminating it costs every task on it its
 * run (docs/ARCHITECTURE.md, rule 12); waiting costs a thread that is really blocked only
 * these seconds, its thread-mates being stopped by it meanwhile anyway.
 */
export const ABORT_SILENCE_MAX_MS = 5_000;
/**
 * How long an adapter gets in all to stop while its thread keeps answering, in graces (at
 * least twice ABORT_SILENCE_MAX_MS): its event loop turns, so it is stopping (removing a home
 * or a worktree, ending a process tree, seconds each on a starved machine). Past this it is
 * terminated all the same: an adapter that ignores its signal must not hold its slot for ever.
 */
export const ABORT_GRACES_ANSWERING_MAX = 10;
/** Most tasks in one pool message of tasks that run for a while (those that settle at once go a dispatch to a message). */
export const BATCH_SIZE_DEFAULT = 64;
/**
 * Longest the pool's ready() waits for its threads to boot and load their adapters (about
 * 40 ms each on 2 cores, in parallel; far more on a loaded machine). Past it the supervisor
 * starts anyway: a thread still booting takes its first message when it is up.
 */
export const THREADS_READY_WAIT_MS = 5_000;
/** Spacing of progress reports per task, from the worker, in ms. */
export const WORKER_PROGRESS_INTERVAL_MS_DEFAULT = 100;

/**
 * The worker entry: worker.js beside this module in dist/. When this module runs
 * from the TypeScript sources (tests), the built entry is used: threads always
 * run built JavaScript.
 */
export function workerFilename(): string {
  const here = fileURLToPath(new URL("./worker.js", import.meta.url));
  if (existsSync(here)) return here;
  const built = fileURLToPath(new URL("../../dist/src/pool/worker.js", import.meta.url));
  if (existsSync(built)) return built;
  throw new RosterError("INTERNAL", `cannot find the pool's worker entry at ${here} or ${built}; build first (npx tsc -p tsconfig.json)`);
}

export interface WorkerPoolOptions {
  /** Worker threads (≈ CPUs). */
  threads: number;
  /** Tasks running at once across the pool; each thread may hold all of them. */
  concurrency: number;
  init: Omit<WorkerInit, "controlChannel" | "progressIntervalMs" | "threadSlots"> & { progressIntervalMs?: number };
  abortGraceMs?: number;
  batchSize?: number;
  /** Old-generation heap limit of each thread, in MiB; Node's own limit when absent. */
  heapLimitMb?: number;
  /** Progress and log reports from the workers, as they arrive. */
  onReport?: (report: WorkerReport) => void;
  /** A pool-level error (a worker failing with no task on it). */
  onError?: (error: Error) => void;
}

/** What the pool hands back for one task: its outcome, once it settles. */
export interface PoolRun {
  taskId: number;
  /** This attempt's address in the pool (abort it by this, never by task id). */
  runId: number;
  outcome: Promise<PoolOutcome>;
}

/**
 * A task's outcome as the pool reports it. `released` means the attempt was cut
 * short through no fault of its own (its thread was terminated because another
 * task on it would not stop): the caller gives the task back without counting
 * the attempt.
 */
export type PoolOutcome = TaskOutcome | { taskId: number; ok: false; error: ErrorObject; aborted: boolean; released: true };

export interface Batch {
  id: number;
  tasks: WorkerTask[];
  /** One per task, in the same order. */
  runIds: number[];
  /** Task id → run id (a batch holds a task once). */
  runIdByTask: Map<number, number>;
  /** Its index in threadSlots, where the receiving worker writes its threadId. */
  slot: number;
  /** The run whose failure to stop caused its thread's termination. */
  culprit: number | null;
  /** Its tasks not settled yet: once none is left (outcomes reported ahead), its slot is free again. */
  unsettled: number;
  slotHeld: boolean;
}

export interface Entry {
  /** This attempt's address in the threads (RunBatchRequest.runIds): aborts name it, not the task. */
  runId: number;
  taskId: number;
  batch: Batch;
  resolve: (outcome: PoolOutcome) => void;
  abortReason: ErrorObject | null;
  /** When the abort was sent, and when the thread holding the attempt last answered it (performance.now(), ms). */
  abortedAt: number;
  answeredAt: number | null;
  /** How long the adapter had when its thread was terminated, in ms (for the culprit's message). */
  stopBoundMs: number;
  graceTimer: NodeJS.Timeout | null;
  resendTimer: NodeJS.Timeout | null;
}

/**
 * How often an abort is sent again while its task has not settled, in ms. A
 * BroadcastChannel delivers only to threads listening at that moment, and a
 * thread that is still starting (or replacing a terminated one) is not yet.
 */
export const ABORT_RESEND_MS = 100;
