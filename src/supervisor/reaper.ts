import type { Clock } from "../clock.js";
import { IntervalService } from "../service.js";
import type { ReapResult, Store } from "../store/index.js";

/**
 * The reaper (docs/ARCHITECTURE.md rule 6): returns expired leases — of any agent, e.g. a
 * supervisor killed with -9 — to pending with backoff, or to failed on their last
 * attempt, and marks silent agents expired.
 *
 * Modes (IntervalService): stopped → ticking (once at start, then every intervalMs) → stopped.
 */
export class Reaper extends IntervalService {
  readonly name = "reaper";

  constructor(
    private readonly host: {
      readonly store: Store;
      readonly clock: Clock;
      /** True while reaping must wait (the database is unreachable: this process's view of others' stamps is stale). */
      paused?(): boolean;
      reaped(result: ReapResult): void;
      error(where: string, error: Error): void;
    },
    intervalMs: number,
  ) {
    if (!Number.isInteger(intervalMs) || intervalMs < 10) throw new RangeError(`reaper.intervalMs: must be an integer >= 10, got ${intervalMs}`);
    // Reaps once at start (docs/ARCHITECTURE.md rule 6: at supervisor start too).
    super((where, error) => host.error(where, error), intervalMs, true);
  }

  protected override get where(): string {
    return "reaper.reapExpired";
  }

  protected async run(): Promise<void> {
    if (this.host.paused?.() === true) return;
    this.host.reaped(await this.host.store.maintenance.reapExpired({ now: this.host.clock.now() }));
  }
}
