import type { Clock } from "../clock.js";
import { coerceError } from "../errors.js";
import type { Store } from "../store/index.js";

export interface WakerHost {
  readonly store: Store;
  readonly clock: Clock;
  /** Some personas (or all, with null) may have ready tasks: claim. */
  wake(personas: readonly string[] | null): void;
  /** Tasks were cancelled in this process; abort the ones running here. */
  cancelled(taskIds: readonly number[]): void;
  /** A lease was reaped in this process; abort the attempt if it runs here. */
  leaseExpired(taskId: number): void;
  /** Once per poll interval. */
  tick(): void;
  error(where: string, error: Error): void;
}

/**
 * Wake-ups, so an idle supervisor costs almost nothing and a ready task starts
 * within milliseconds:
 *   - in-process writes: store events (task:enqueued, task:ready, task:retried,
 *     task:released, lease:expired …) wake the producers at once;
 *   - other processes' writes: store.watchExternalChanges() (a file watch) asks
 *     for a check at once, and store.hasExternalChanges() (PRAGMA data_version)
 *     confirms it; the same check runs every pollIntervalMs in case the watch
 *     misses (a file system without change notification);
 *   - delayed tasks and retries: one timer at the next run_at (store.tasks.nextRunAt).
 *
 * Modes: stopped → listening (events + poll timer + at most one run_at timer) → stopped.
 */
export class Waker {
  private offs: Array<() => void> = [];
  private poll: NodeJS.Timeout | null = null;
  private runAtTimer: NodeJS.Timeout | null = null;
  private runAtDue = Number.POSITIVE_INFINITY;
  private checking = false;
  private recheck = false;
  private unwatch: (() => void) | null = null;

  constructor(
    private readonly host: WakerHost,
    readonly pollIntervalMs: number,
  ) {
    if (!Number.isInteger(pollIntervalMs) || pollIntervalMs < 1) throw new RangeError(`waker.pollIntervalMs: must be a positive integer, got ${pollIntervalMs}`);
  }

  start(): void {
    if (this.poll !== null) return;
    const events = this.host.store.events;
    this.offs = [
      events.on("task:enqueued", (e) => (e.ready > 0 ? this.host.wake(e.personas) : undefined)),
      events.on("task:ready", () => this.host.wake(null)),
      events.on("task:retried", (e) => this.host.wake([e.persona])),
      events.on("task:released", (e) => this.host.wake([e.persona])),
      events.on("task:retrying", (e) => this.at(e.runAt)),
      events.on("lease:expired", (e) => {
        this.host.leaseExpired(e.taskId);
        void this.rescheduleRunAt();
      }),
      events.on("task:cancelled", (e) => this.host.cancelled(e.taskIds)),
    ];
    this.unwatch = this.host.store.watchExternalChanges(() => void this.checkExternal());
    // The poll keeps the process alive while the supervisor runs.
    this.poll = setInterval(() => this.pollOnce(), this.pollIntervalMs);
  }

  stop(): void {
    for (const off of this.offs) off();
    this.offs = [];
    this.unwatch?.();
    this.unwatch = null;
    if (this.poll !== null) clearInterval(this.poll);
    this.poll = null;
    this.clearRunAt();
  }

  /** Arms the run_at timer for `due` if that is earlier than the one armed. */
  at(due: number): void {
    if (this.poll === null || due >= this.runAtDue) return;
    this.clearRunAt();
    this.runAtDue = due;
    const delay = Math.max(0, due - this.host.clock.now());
    this.runAtTimer = setTimeout(() => {
      this.runAtTimer = null;
      this.runAtDue = Number.POSITIVE_INFINITY;
      // Timers count from the event loop's cached time, which lags the clock after
      // long synchronous work, so one can fire before `due`: a claim then would find
      // nothing and no later wake-up would come. Arm again for the rest.
      if (this.host.clock.now() < due) return this.at(due);
      this.host.wake(null);
    }, delay);
    this.runAtTimer.unref();
  }

  /** Looks up the next run_at of a pending task and arms the timer for it. */
  async rescheduleRunAt(): Promise<void> {
    try {
      const next = await this.host.store.tasks.nextRunAt({ now: this.host.clock.now() });
      if (next !== null) this.at(next);
    } catch (error) {
      this.host.error("waker.nextRunAt", coerceError(error));
    }
  }

  private clearRunAt(): void {
    if (this.runAtTimer !== null) clearTimeout(this.runAtTimer);
    this.runAtTimer = null;
    this.runAtDue = Number.POSITIVE_INFINITY;
  }

  private pollOnce(): void {
    this.host.tick();
    // checkExternal guards against overlapping checks itself.
    void this.checkExternal();
  }

  /**
   * Wakes the producers when another process has written. A watch event that
   * arrives during a check runs one more check after it, so none is lost; a burst
   * of them (the store's own commits touch the file too) costs one check each turn.
   */
  private async checkExternal(): Promise<void> {
    if (this.checking) {
      this.recheck = true;
      return;
    }
    this.checking = true;
    try {
      do {
        this.recheck = false;
        if (this.poll === null) return;
        if (await this.host.store.hasExternalChanges()) {
          this.host.wake(null);
          await this.rescheduleRunAt();
        }
      } while (this.recheck);
    } catch (error) {
      this.host.error("waker.poll", coerceError(error));
    } finally {
      this.checking = false;
    }
  }
}
