import type { Clock } from "../clock.js";
import { coerceError } from "../errors.js";
import type { Service } from "../service.js";
import type { Store } from "../store/index.js";
import { isLive, type RunningAttempt } from "./run.js";

/** How often reported progress is written to the store, at most, per task, in ms. */
export const PROGRESS_FLUSH_MS_DEFAULT = 500;

/**
 * Writes progress to the store, throttled: workers already space their reports
 * (WorkerInit.progressIntervalMs); here only the latest value per task is kept and
 * written once per flushMs, so a chatty adapter costs one fenced write per
 * interval, not one per call. Live views get every report at once from the
 * supervisor's "progress:reported" event instead.
 *
 * Modes: stopped → started (a timer armed only while something is dirty) → stopped.
 */
export class ProgressWriter implements Service {
  readonly name = "progressWriter";
  private readonly dirty = new Set<RunningAttempt>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;

  constructor(
    private readonly host: {
      readonly store: Store;
      readonly clock: Clock;
      lost(run: RunningAttempt): void;
      error(where: string, error: Error): void;
    },
    readonly flushMs: number = PROGRESS_FLUSH_MS_DEFAULT,
  ) {
    if (!Number.isInteger(flushMs) || flushMs < 1) throw new RangeError(`progressWriter.flushMs: must be a positive integer, got ${flushMs}`);
  }

  start(): void {
    this.stopped = false;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.dirty.clear();
  }

  mark(run: RunningAttempt): void {
    if (this.stopped) return;
    this.dirty.add(run);
    if (this.timer === null) {
      this.timer = setTimeout(() => void this.flush(), this.flushMs);
      this.timer.unref();
    }
  }

  forget(run: RunningAttempt): void {
    this.dirty.delete(run);
  }

  private async flush(): Promise<void> {
    this.timer = null;
    const runs = [...this.dirty];
    this.dirty.clear();
    for (const run of runs) {
      if (!isLive(run) || run.progress === null) continue;
      try {
        const result = await this.host.store.tasks.progressIfLeased({
          taskId: run.task.id,
          leaseToken: run.task.leaseToken,
          fraction: run.progress.fraction,
          ...(run.progress.message === null ? {} : { message: run.progress.message }),
          now: this.host.clock.now(),
        });
        if (!result.ok) this.host.lost(run);
      } catch (error) {
        this.host.error("progressWriter.progressIfLeased", coerceError(error));
      }
    }
  }
}
