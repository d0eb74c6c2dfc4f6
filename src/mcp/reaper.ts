import type { Clock } from "../clock.js";
import { coerceError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { Store } from "../store/index.js";

/**
 * Returns expired leases to the queue for `roster mcp` when no supervisor runs
 * (external agents only). Reaping is one transaction and idempotent, so running it
 * beside a supervisor's reaper is harmless. Modes: stopped → running (a timer every
 * intervalMs, one reap at a time) → stopped.
 */
export class McpLeaseReaper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly options: { store: Store; clock: Clock; logger: Logger; intervalMs: number }) {
    if (!Number.isInteger(options.intervalMs) || options.intervalMs < 10) {
      throw new RangeError("options.intervalMs must be an integer of at least 10");
    }
  }

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => void this.reapOnce(), this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  reapOnce(): Promise<void> {
    this.running ??= (async () => {
      try {
        const out = await this.options.store.maintenance.reapExpired({ now: this.options.clock.now() });
        if (out.retried.length + out.failed.length + out.expiredAgents.length > 0) {
          this.options.logger.info({ retried: out.retried.length, failed: out.failed.length, expiredAgents: out.expiredAgents.length }, "reaped expired leases");
        }
      } catch (error) {
        this.options.logger.warn({ err: coerceError(error) }, "lease reap failed; will try again");
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }
}
