import type { Clock } from "../clock.js";
import { coerceError } from "../errors.js";
import type { Service } from "../service.js";
import type { Store } from "../store/index.js";
import { TIMER_MS_MAX, setLongTimeout, type LongTimeout } from "../timers.js";

/** Backoff of a failed store call that must be tried again, in ms: RETRY_BASE_MS doubling to RETRY_MAX_MS. */
export const RETRY_BASE_MS = 50;
export const RETRY_MAX_MS = 2_000;

export interface WakerHost {
  readonly store: Store;
  readonly clock: Clock;
  /** Some personas (or all, with null) may have ready tasks: claim. */
  wake(personas: readonly string[] | null): void;
  /** Tasks were cancelled in this process; abort the ones running here. */
  cancelled(taskIds: readonly number[]): void;
  /** A lease was reaped in this process; abort the attempt if it runs here. */
  leaseExpired(taskId: number, leaseToken: string): void;
  /** Another process wrote: check that the leases held here are still ours (a cancel, a reap). */
  externalWrite(): void;
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
 *     for a check at once, and store.hasExternalChanges() (PRAGMA data_version; on
 *     PostgreSQL the transactions committed since the last look, the store's own left
 *     out: src/store/postgres/own-writes.ts; while it LISTENs, the notifications alone,
 *     as every write that may wake work NOTIFYs) confirms it; the same check runs every pollIntervalMs in case the watch
 *     misses (a file system without change notification); a claim that found the
 *     persona's room held by other claimants is woken the same way by the settle
 *     that frees it (on PostgreSQL a NOTIFY, migrations/postgres/0009);
 *   - delayed tasks and retries: one timer at the next run_at (store.tasks.nextRunAt).
 *
 * Modes: stopped → listening (events + poll timer + at most one run_at timer) → stopped.
 */
export class Waker implements Service {
  readonly name = "waker";
  private offs: Array<() => void> = [];
  private poll: NodeJS.Timeout | null = null;
  private runAtTimer: LongTimeout | null = null;
  private runAtDue = Number.POSITIVE_INFINITY;
  private checking = false;
  private recheck = false;
  private unwatch: (() => void) | null = null;
  private lookupFailures = 0;

  constructor(
    private readonly host: WakerHost,
    readonly pollIntervalMs: number,
  ) {
    if (!Number.isInteger(pollIntervalMs) || pollIntervalMs < 1 || pollIntervalMs > TIMER_MS_MAX) {
      throw new RangeError(`waker.pollIntervalMs: must be an integer from 1 to ${TIMER_MS_MAX}, got ${pollIntervalMs}`);
    }
  }

  start(): void {
    if (this.poll !== null) return;
    const events = this.host.store.events;
    this.offs = [
      events.on("task:enqueued", (e) => (e.ready > 0 ? this.host.wake(e.personas) : undefined)),
      // Only the personas whose tasks became ready, or whose claim a lifted gate reopened.
      events.on("task:ready", (e) => this.host.wake(e.personas)),
      events.on("claim:reopened", (e) => this.host.wake(e.personas)),
      events.on("task:retried", (e) => this.host.wake([e.persona])),
      events.on("task:released", (e) => this.host.wake([e.persona])),
      events.on("task:retrying", (e) => this.at(e.runAt)),
      events.on("lease:expired", (e) => {
        this.host.leaseExpired(e.taskId, e.leaseToken);
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

  /**
   * Arms the run_at timer for `due` if that is earlier than the one armed. A task may be
   * delayed up to a year, past what one setTimeout holds: setLongTimeout waits in steps.
   */
  at(due: number): void {
    if (this.poll === null || due >= this.runAtDue) return;
    this.clearRunAt();
    this.runAtDue = due;
    const delay = Math.max(0, due - this.host.clock.now());
    this.runAtTimer = setLongTimeout(() => {
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

  /**
   * Looks up the next run_at of a pending task after `since` (default now) and arms
   * the timer for it. A claim pass passes the time its claims were made with: a task
   * that fell due while a claim waited for the write lock was not claimable then, is
   * due now, and gets a timer at once (docs/ARCHITECTURE.md, rule 13). A failed
   * lookup is tried again after a backoff: no failure may leave no timer behind.
   */
  async rescheduleRunAt(since?: number): Promise<void> {
    try {
      const next = await this.host.store.tasks.nextRunAt({ now: since ?? this.host.clock.now() });
      this.lookupFailures = 0;
      if (next !== null) this.at(next);
    } catch (error) {
      this.host.error("waker.nextRunAt", coerceError(error));
      if (this.poll === null) return;
      const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** this.lookupFailures++);
      setTimeout(() => void this.rescheduleRunAt(since), delay).unref();
    }
  }

  private clearRunAt(): void {
    this.runAtTimer?.clear();
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
        if (await this.host.store.hasExternalChanges({ wakeUpsOnly: true })) {
          this.host.wake(null);
          this.host.externalWrite();
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
