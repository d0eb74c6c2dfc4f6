import type { Clock } from "../clock.js";
import { IntervalService } from "../service.js";
import type { LeaseRef, Store } from "../store/index.js";

/** Shortest spacing of lease renewals, in ms (personas' leaseMs is at least 100). */
export const HEARTBEAT_INTERVAL_MS_MIN = 25;

export interface LeaseKeeperHost {
  readonly store: Store;
  readonly clock: Clock;
  readonly agentId: string;
  /** The leases to renew now. */
  leases(): LeaseRef[];
  /** Leases the store says are no longer held by this agent. */
  lost(leases: LeaseRef[]): void;
  /** The store no longer knows this agent as active (deregistered elsewhere): register again. */
  reRegister(): Promise<void>;
  renewed(count: number, lost: number): void;
  error(where: string, error: Error): void;
}

/**
 * Lease renewal (docs/ARCHITECTURE.md rule 5): every intervalMs (min(leaseMs) / 3) ONE store
 * call renews every lease the supervisor holds and keeps its agent row alive.
 *
 * Modes (IntervalService): stopped → ticking (a timer per interval; a tick never overlaps the
 * previous one) → stopped. With nothing running a tick is one tiny write that
 * keeps the agent alive, every intervalMs.
 */
export class LeaseKeeper extends IntervalService {
  readonly name = "leaseKeeper";

  constructor(
    private readonly host: LeaseKeeperHost,
    intervalMs: number,
  ) {
    if (!Number.isFinite(intervalMs) || intervalMs < HEARTBEAT_INTERVAL_MS_MIN) {
      throw new RangeError(`leaseKeeper.intervalMs: must be at least ${HEARTBEAT_INTERVAL_MS_MIN}, got ${intervalMs}`);
    }
    super((where, error) => host.error(where, error), intervalMs);
  }

  protected override get where(): string {
    return "leaseKeeper.heartbeat";
  }

  /** A persona with a shorter lease arrived (hot reload): renew at least this often from now on. */
  shortenTo(intervalMs: number): void {
    if (intervalMs >= this.intervalMs || intervalMs < HEARTBEAT_INTERVAL_MS_MIN) return;
    this.setIntervalMs(intervalMs);
  }

  protected async run(): Promise<void> {
    const leases = this.host.leases();
    const result = await this.host.store.agents.heartbeat({ agentId: this.host.agentId, now: this.host.clock.now(), leases });
    if (!result.agentActive) await this.host.reRegister();
    if (result.lost.length > 0) this.host.lost(result.lost);
    this.host.renewed(result.renewed.length, result.lost.length);
  }
}
