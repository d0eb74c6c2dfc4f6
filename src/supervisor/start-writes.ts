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
  /** The start writes under way, or null. */
  private writing: Promise<void> | null = null;

  constructor(
    private readonly host: StartWritesHost,
    private readonly foldMs: number,
  ) {}

  /** A dispatched attempt's start, due after foldMs (at once when 0); its timer is `run.startTimer`. */
  arm(run: RunningAttempt): void {
    if (this.foldMs === 0) this.enqueue(run);
    else run.startTimer = setTimeout(() => this.enqueue(run), this.foldMs);
  }

  /** Resolves once the starts queued so far are written. */
  async written(): Promise<void> {
    await this.writing;
  }

  private enqueue(run: RunningAttempt): void {
    run.startTimer = null;
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
