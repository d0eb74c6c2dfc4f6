import type { Clock } from "../clock.js";
import { coerceError } from "../errors.js";
import type { ReapResult, Store } from "../store/index.js";

/**
 * The reaper (docs/ARCHITECTURE.md rule 6): returns expired leases — of any agent, e.g. a
 * supervisor killed with -9 — to pending with backoff, or to failed on their last
 * attempt, and marks silent agents expired.
 *
 * Modes: stopped → running (once at start, then every intervalMs) → stopped.
 */
export class Reaper {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly host: {
      readonly store: Store;
      readonly clock: Clock;
      reaped(result: ReapResult): void;
      error(where: string, error: Error): void;
    },
    readonly intervalMs: number,
  ) {
    if (!Number.isInteger(intervalMs) || intervalMs < 10) throw new RangeError(`reaper.intervalMs: must be an integer >= 10, got ${intervalMs}`);
  }

  async start(): Promise<void> {
    if (this.timer !== null) return;
    this.timer = setInterval(() => void this.reap(), this.intervalMs);
    this.timer.unref();
    await this.reap();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  async reap(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const result = await this.host.store.maintenance.reapExpired({ now: this.host.clock.now() });
      this.host.reaped(result);
    } catch (error) {
      this.host.error("reaper.reapExpired", coerceError(error));
    } finally {
      this.running = false;
    }
  }
}
