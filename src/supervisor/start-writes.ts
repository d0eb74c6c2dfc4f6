import { coerceError } from "../errors.js";
import type { Store } from "../store/index.js";
import type { RunningAttempt } from "./run.js";

export interface StartWritesHost {
  readonly store: Store;
  /** Of the attempts whose starts are due, those still dispatched, now started: ./attempts.ts alone moves phases. */
  begin(runs: readonly RunningAttempt[]): RunningAttempt[];
  /** The store refused this attempt's start: its lease is no longer ours. */
  lost(run: RunningAttempt): void;
  error(where: string, error: Error): void;
}

/**
 * The start fold (docs/ARCHITECTURE.md, data path 4): a dispatched attempt's start
 * (claimed → in_progress) is written startFoldMs after dispatch, so one that finishes
 * sooner settles claimed → completed without a start write. The starts due together
 * share a transaction (`tasks.start`), each fenced by its lease.
 */
export class StartWrites {
  private queue: RunningAttempt[] = [];
  /** The fold timers armed: one per dispatch (armAll), so a dispatch of hundreds costs one timer, not one each. */
  private readonly timers = new Set<NodeJS.Timeout>();
  /** The start writes under way, or null. */
  private writing: Promise<void> | null = null;

  constructor(
    private readonly host: StartWritesHost,
    private readonly foldMs: number,
  ) {}

  /**
   * The starts of one dispatch's attempts, due together after foldMs (at once when 0). One that
   * has finished (or is aborting) by then is left out when the timer fires.
   */
  armAll(runs: readonly RunningAttempt[]): void {
    if (this.foldMs === 0) {
      for (const run of runs) this.enqueue(run);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      for (const run of runs) this.enqueue(run);
    }, this.foldMs);
    this.timers.add(timer);
  }

  /** Stopped: no fold timer fires any more. */
  clearTimers(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /** Resolves once the starts queued so far are written. */
  async written(): Promise<void> {
    await this.writing;
  }

  private enqueue(run: RunningAttempt): void {
    if (run.phase !== "dispatched") return;
    this.queue.push(run);
    // After this turn's timers: the fold timers of one dispatch fire together and share a transaction.
    if (this.writing === null) this.writing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.write());
  }

  /** Start writes: whatever queued meanwhile goes in one transaction (each start fenced by its lease), drained in order. */
  private async write(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.host.begin(this.queue);
      this.queue = [];
      if (batch.length === 0) continue;
      try {
        const results = await this.host.store.tasks.start({
          starts: batch.map((run) => ({ taskId: run.task.id, leaseToken: run.task.leaseToken })),
          now: Math.min(...batch.map((run) => run.dispatchedAt)),
        });
        results.forEach((result, i) => {
          if (!result.ok) this.host.lost(batch[i]!);
        });
      } catch (error) {
        this.host.error("supervisor.start", coerceError(error));
      }
    }
    this.writing = null;
  }
}
