import type { Clock } from "../clock.js";
import type { Logger } from "../logging/logger.js";
import { IntervalService } from "../service.js";
import type { Store } from "../store/index.js";

/**
 * Returns expired leases to the queue for `roster mcp` when no supervisor runs
 * (external agents only). Reaping is one transaction and idempotent, so running it
 * beside a supervisor's reaper is harmless. Modes (IntervalService): stopped →
 * ticking (every intervalMs, one reap at a time) → stopped.
 */
export class McpLeaseReaper extends IntervalService {
  readonly name = "mcpReaper";

  constructor(private readonly options: { store: Store; clock: Clock; logger: Logger; intervalMs: number }) {
    if (!Number.isInteger(options.intervalMs) || options.intervalMs < 10) {
      throw new RangeError("options.intervalMs must be an integer of at least 10");
    }
    super((_where, error) => options.logger.warn({ err: error }, "lease reap failed; will try again"), options.intervalMs);
  }

  protected async run(): Promise<void> {
    const out = await this.options.store.maintenance.reapExpired({ now: this.options.clock.now() });
    if (out.retried.length + out.failed.length + out.expiredAgents.length > 0) {
      this.options.logger.info({ retried: out.retried.length, failed: out.failed.length, expiredAgents: out.expiredAgents.length }, "reaped expired leases");
    }
  }
}
