import type { Clock } from "../clock.js";
import { IntervalService } from "../service.js";
import type { Logger } from "../logging/logger.js";
import type { LeaseRef, Store } from "../store/index.js";
import type { SupervisorEventBus } from "./events.js";

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
      readonly logger: Logger;
      readonly events: SupervisorEventBus;
      /** Leases it reaped: those held here have lost their lease. */
      lost(leases: LeaseRef[]): void;
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
    const result = await this.host.store.maintenance.reapExpired({ now: this.host.clock.now() });
    const { retried, failed, expiredAgents } = result;
    if (retried.length + failed.length + expiredAgents.length > 0) {
      this.host.logger.info({ retried: retried.length, failed: failed.length, expiredAgents }, "reaper collected expired leases");
    }
    this.host.events.emit("reaper:ran", { retried: retried.length, failed: failed.length, expiredAgents: expiredAgents.length });
    // Our own attempts among them have lost their lease.
    this.host.lost([...retried, ...failed]);
  }
}
