import type { Clock } from "../clock.js";
import { IntervalService } from "../service.js";
import type { Store } from "../store/index.js";
import type { Attempts } from "./attempts.js";
import type { ConnectionGuard } from "./connection.js";
import type { SupervisorEventBus } from "./events.js";

/** Shortest spacing of lease renewals, in ms (personas' leaseMs is at least 100). */
export const HEARTBEAT_INTERVAL_MS_MIN = 25;
/** Longest spacing of renewals tried while they fail and no lease is held (reconnecting), in ms. */
export const RECONNECT_BACKOFF_MS_MAX = 5_000;

/** How often the lease keeper renews: a third of the shortest lease served (at most 10 s, at least HEARTBEAT_INTERVAL_MS_MIN). */
export function renewalIntervalMs(personas: readonly { leaseMs: number }[]): number {
  return Math.max(HEARTBEAT_INTERVAL_MS_MIN, Math.floor(Math.min(...personas.map((p) => p.leaseMs), 30_000) / 3));
}

export interface LeaseKeeperHost {
  readonly store: Store;
  readonly clock: Clock;
  readonly agentId: string;
  readonly events: SupervisorEventBus;
  readonly monotonic: () => number;
  /** The attempts held here: the leases renewed, those lost aborted, those overdue aborted, those reaped given back. */
  readonly attempts: Pick<Attempts, "get" | "leases" | "abortLeases" | "renewed" | "abortOverdue" | "giveBackLost">;
  /** Whether the database answers: each committed renewal says it does; a whole shortest lease without one, that it does not. */
  readonly connection: Pick<ConnectionGuard, "renewed" | "checkSilence">;
  /** The store no longer knows this agent as active (deregistered elsewhere): register again. */
  reRegister(): Promise<void>;
  error(where: string, error: Error): void;
}

/**
 * Lease renewal (docs/ARCHITECTURE.md rule 5): every intervalMs (min(leaseMs) / 3) ONE store
 * call renews every lease the supervisor holds and keeps its agent row alive.
 *
 * Modes (IntervalService): stopped → ticking (a timer per interval; a tick never overlaps the
 * previous one) → stopped. With nothing running a tick is one tiny write that
 * keeps the agent alive, every intervalMs. While renewals fail and no lease is
 * held, they are tried with a backoff (intervalMs doubling to
 * RECONNECT_BACKOFF_MS_MAX): each is the probe that finds the database again.
 * After a renewal commits, the leases the reaper took while their attempts ran here
 * are given back (`giveBack`): this holder was cut off or frozen, its tasks did not
 * kill it (src/store/lost-leases.ts).
 */
export class LeaseKeeper extends IntervalService {
  readonly name = "leaseKeeper";
  private failures = 0;
  private nextTryAt = Number.NEGATIVE_INFINITY;

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

  /**
   * Every interval, even while the last renewal is still in flight, the overdue check runs
   * first: a whole shortest lease without a committed renewal means the database does not
   * answer (./connection.ts), and attempts a whole lease past their last one stop.
   */
  override tick(): Promise<void> {
    this.host.connection.checkSilence(3 * this.intervalMs);
    this.host.attempts.abortOverdue(this.host.monotonic());
    return super.tick();
  }

  protected async run(): Promise<void> {
    const { monotonic, attempts } = this.host;
    const leases = attempts.leases();
    // Reconnecting with nothing to keep: back off. With leases held, every interval counts.
    if (leases.length === 0 && monotonic() < this.nextTryAt) return;
    const sentAt = monotonic();
    let result;
    try {
      result = await this.host.store.agents.heartbeat({ agentId: this.host.agentId, now: this.host.clock.now(), leases });
    } catch (error) {
      this.failures++;
      this.nextTryAt = monotonic() + Math.min(RECONNECT_BACKOFF_MS_MAX, this.intervalMs * 2 ** (this.failures - 1));
      throw error;
    }
    this.failures = 0;
    this.nextTryAt = Number.NEGATIVE_INFINITY;
    // Committed: these leases are safe for another lease from when the renewal was sent; the database answers.
    attempts.renewed(result.renewed, sentAt);
    this.host.connection.renewed();
    if (!result.agentActive) await this.host.reRegister();
    // A lease whose attempt settled here while the renewal was on its way is not renewed, nor lost: only
    // the leases of attempts still held here count (the others' settlements already committed).
    const lost = result.lost.filter((lease) => attempts.get(lease) !== undefined);
    if (lost.length > 0) attempts.abortLeases(lost);
    this.host.events.emit("lease:renewed", { count: result.renewed.length, lost: lost.length });
    // The database answers: the leases lost here to a cut or a freeze go back (rare; one small write).
    await attempts.giveBackLost();
  }
}
