import { coerceError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { Store } from "../store/index.js";

/**
 * Why a supervisor that stops when its work is done should stop now, or null:
 * with a task id (roster run) once that task has ended (its status); otherwise
 * (exitWhenIdle) once nothing is pending, claimed or running in the database
 * ("idle"), and waiting tasks wait only on parked ones that no deadline of this
 * supervisor's will move. Reads only.
 */
export async function workDone(store: Store, taskId: number | null, logger: Logger): Promise<string | null> {
  if (taskId !== null) {
    const { status } = await store.tasks.get({ taskId, eventLimit: 0 });
    return status === "completed" || status === "failed" || status === "cancelled" ? status : null;
  }
  const counts = await store.tasks.counts();
  let open = 0;
  let parked = 0;
  let waiting = 0;
  for (const states of Object.values(counts)) {
    open += (states.pending ?? 0) + (states.claimed ?? 0) + (states.in_progress ?? 0);
    parked += (states.awaiting_approval ?? 0) + (states.awaiting_input ?? 0);
    waiting += states.waiting ?? 0;
  }
  // With nothing pending or running, waiting tasks wait on parked ones: only a person moves them, or an
  // approval's deadline default, which this supervisor applies (so it stays for one).
  if (open === 0 && parked === 0) open = waiting;
  else if (open === 0 && (await store.humans.listParked({ limit: 0 })).some((t) => t.request?.deadlineAt != null && t.request.defaultOutcome !== null)) open = parked;
  if (open > 0) return null;
  if (parked > 0) logger.info({ parked, waiting }, "exit when idle: nothing can run until a person answers or approves (roster answer / approve / reject)");
  return "idle";
}

/** workDone for a supervisor, one check at a time: `stop(reason)` once it is done and `busy()` is still false. */
export class IdleCheck {
  private checking = false;

  constructor(
    private readonly store: Store,
    private readonly taskId: number | null,
    private readonly logger: Logger,
    private readonly error: (where: string, error: Error) => void,
  ) {}

  async check(busy: () => boolean, stop: (reason: string) => void): Promise<void> {
    if (this.checking || busy()) return;
    this.checking = true;
    try {
      const reason = await workDone(this.store, this.taskId, this.logger);
      if (reason !== null && !busy()) stop(reason);
    } catch (error) {
      this.error("supervisor.checkIdle", coerceError(error));
    } finally {
      this.checking = false;
    }
  }
}
