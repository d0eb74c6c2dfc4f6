import { LeaseLostError, RosterError } from "../errors.js";
import type { Persona } from "../personas/schema.js";
import type { PoolOutcome } from "../pool/pool-types.js";
import type { ClaimedTask } from "../store/types.js";
import type { LongTimeout } from "../timers.js";

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
  timeoutTimer: LongTimeout | null;
  progress: { fraction: number; message: string | null } | null;
  /** Holds one of the supervisor's slots and its persona's concurrency: until its outcome, or its settlement (./attempts.ts, freesAtOutcome). */
  slot: boolean;
}

/** Still running its adapter, neither aborted nor finished: progress, usage and budgets concern it. */
export function isLive(run: RunningAttempt): boolean {
  return run.phase === "dispatched" || run.phase === "started";
}

/**
 * Whether an attempt's slot frees at its outcome, before its settlement commits: a completion
 * that reported no usage changes no gate of the claim. A failure (a breaker counts it), a
 * release (a provider's pause), spend (budgets) or an abort frees its slot only once the store
 * has recorded it, so the economic gates' bounds hold as docs/economics.md states them (each
 * slot claims again only after what its last attempt did to the gates is committed). A
 * completion the store refuses (ADAPTER_OUTPUT_INVALID, recorded as a failure) is the one
 * failure that may let a breaker see one more attempt per supervisor.
 */
export function freesAtOutcome(run: RunningAttempt, outcome: PoolOutcome): boolean {
  return run.abort === null && outcome.ok && outcome.usage === undefined;
}

/** The reason an abort carries to the adapter (and, for a timeout, to the store). */
export function abortError(run: RunningAttempt, kind: AbortKind): Error {
  const { id, attempt, timeoutMs } = run.task;
  switch (kind) {
    case "timeout":
      return new RosterError("TIMEOUT", `task ${id} attempt ${attempt} timed out after ${timeoutMs} ms`);
    case "lease-lost":
      return new LeaseLostError(id);
    case "cancelled":
      return new RosterError("ABORTED", `task ${id} was cancelled`, { retryable: false });
    case "db-unreachable":
      return new RosterError("DATABASE_IO", `task ${id} attempt ${attempt}: no renewal of its lease committed for ${run.task.leaseMs} ms (database unreachable); another host may take it`);
    default:
      return new RosterError("SHUTDOWN", `the supervisor is shutting down; task ${id} goes back to pending`);
  }
}
