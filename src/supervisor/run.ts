import type { Persona } from "../personas/schema.js";
import type { ClaimedTask } from "../store/types.js";

/**
 * "budget": its reported usage reached its task's or goal's budget (./budget-watch.ts).
 * "db-unreachable": a whole lease passed without a renewal of it committing (the
 * database is unreachable), so another host may reap it (./connection.ts).
 */
export type AbortKind = "timeout" | "lease-lost" | "cancelled" | "shutdown" | "budget" | "db-unreachable";

/**
 * Where an attempt is in its life (src/supervisor/attempts.ts):
 *   dispatched — handed to the pool, its timeout armed; its start is not written yet
 *   started    — its start (claimed → in_progress) is written (or being written)
 *   aborting   — an abort was sent to its run (`abort` says why); its outcome is awaited
 *   finished   — the pool reported its outcome; it waits for the completer's commit
 * dispatched → started → finished, and dispatched | started → aborting → finished.
 */
export type AttemptPhase = "dispatched" | "started" | "aborting" | "finished";

/** One attempt the supervisor holds: from claim until its settlement commits. */
export interface RunningAttempt {
  task: ClaimedTask;
  /** Its address in the worker pool (PoolRun.runId), set once dispatched; aborts go to it. */
  runId: number;
  persona: Persona;
  /** Clock time the attempt was handed to the pool. */
  dispatchedAt: number;
  /** Monotonic time its last committed renewal (at first, its claim) was sent: its lease is safe until a whole lease after it. */
  renewedAt: number;
  phase: AttemptPhase;
  /** Why it is being aborted, once it is (kept when it has finished: the settlement depends on it). */
  abort: AbortKind | null;
  timeoutTimer: NodeJS.Timeout | null;
  startTimer: NodeJS.Timeout | null;
  progress: { fraction: number; message: string | null } | null;
}

/** Still running its adapter, neither aborted nor finished: progress, usage and budgets concern it. */
export function isLive(run: RunningAttempt): boolean {
  return run.phase === "dispatched" || run.phase === "started";
}
