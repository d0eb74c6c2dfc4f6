import type { Persona } from "../personas/schema.js";
import type { ClaimedTask } from "../store/types.js";

/** "budget": its reported usage reached its task's or goal's budget (./budget-watch.ts). */
export type AbortKind = "timeout" | "lease-lost" | "cancelled" | "shutdown" | "budget";

/** One attempt the supervisor holds: from claim until its settlement commits. */
export interface RunningAttempt {
  task: ClaimedTask;
  /** Its address in the worker pool (PoolRun.runId), set once dispatched; aborts go to it. */
  runId: number;
  persona: Persona;
  /** Clock time the attempt was handed to the pool. */
  dispatchedAt: number;
  /** Why it is being aborted, once it is. */
  abort: AbortKind | null;
  /** Its start (claimed → in_progress) has been written. */
  started: boolean;
  /** It has finished in the worker and waits for the completer. */
  finished: boolean;
  timeoutTimer: NodeJS.Timeout | null;
  startTimer: NodeJS.Timeout | null;
  progress: { fraction: number; message: string | null } | null;
}
