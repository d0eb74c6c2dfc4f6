import { systemClock, type Clock } from "../clock.js";
import { coerceError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { Store } from "../store/index.js";
import { heldByHand } from "./held-by-hand.js";

/**
 * Why a supervisor that stops when its work is done should stop now, or null:
 * with a task id (roster run) once that task has ended (its status); otherwise
 * (exitWhenIdle) once nothing can progress without a person ("idle"): nothing
 * claimed or running in the database, every pending task held by what only a
 * person lifts (./held-by-hand.ts: a spent task or goal budget, a provider paused
 * with no end), and waiting tasks waiting only on those or on parked ones that
 * no deadline of this supervisor's will move. A pending task that becomes
 * runnable by itself (a delay, a backoff, a pause, rate window or cooldown that
 * ends) keeps it running. Says what holds the work, and the commands that lift
 * it. Reads only.
 */
export async function workDone(store: Store, taskId: number | null, logger: Logger, now: number = Date.now()): Promise<string | null> {
  if (taskId !== null) {
    const { status } = await store.tasks.get({ taskId, eventLimit: 0 });
    return status === "completed" || status === "failed" || status === "cancelled" ? status : null;
  }
  const counts = await store.tasks.counts();
  let running = 0;
  let pending = 0;
  let parked = 0;
  let waiting = 0;
  for (const states of Object.values(counts)) {
    running += (states.claimed ?? 0) + (states.in_progress ?? 0);
    pending += states.pending ?? 0;
    parked += (states.awaiting_approval ?? 0) + (states.awaiting_input ?? 0);
    waiting += states.waiting ?? 0;
  }
  if (running > 0) return null;
  // Only read what holds pending tasks once nothing runs: a task that runs is open work anyway.
  const held = pending === 0 ? { tasks: 0, lifts: [] } : await heldByHand(store, counts, now);
  let open = pending - held.tasks;
  // With nothing runnable, waiting tasks wait on parked or held ones: only a person moves them, or an
  // approval's deadline default, which this supervisor applies (so it stays for one).
  if (open === 0 && parked === 0 && held.tasks === 0) open = waiting;
  else if (open === 0 && parked > 0 && (await store.humans.listParked({ limit: 0 })).some((t) => t.request?.deadlineAt != null && t.request.defaultOutcome !== null)) open = parked;
  if (open > 0) return null;
  if (parked > 0 || held.tasks > 0) {
    const what = [
      ...(parked > 0 ? [`${parked} parked for a person: roster answer / approve / reject`] : []),
      ...held.lifts,
    ];
    logger.info({ parked, held: held.tasks, waiting, lifts: what }, `exit when idle: nothing can run until a person acts (${what.join("; ")})`);
  }
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
    private readonly clock: Clock = systemClock,
  ) {}

  async check(busy: () => boolean, stop: (reason: string) => void): Promise<void> {
    if (this.checking || busy()) return;
    this.checking = true;
    try {
      const reason = await workDone(this.store, this.taskId, this.logger, this.clock.now());
      if (reason !== null && !busy()) stop(reason);
    } catch (error) {
      this.error("supervisor.checkIdle", coerceError(error));
    } finally {
      this.checking = false;
    }
  }
}
