/**
 * Liveness without comparing clocks (docs/ARCHITECTURE.md, "Liveness").
 *
 * A lease row carries a renewal stamp (`lease_expires_at`, which every renewal
 * strictly increases) and an agent row its own (`last_heartbeat`). Nobody compares
 * a stamp with a clock: a judge only watches whether it MOVES. It remembers, per
 * lease and per agent, the stamp it last saw and when it saw it change, on its own
 * monotonic clock; a holder is dead once its stamp has stood still for its whole
 * lease (leaseMs, or the agent's heartbeatTimeoutMs) of the judge's time, not
 * counting time during which the judge itself could not write (a write lock held
 * elsewhere stops every holder's renewal as well). The reap is conditional on the
 * stamp still being the one judged, in the same transaction, so a renewal that
 * commits between the judgement and the reap always wins.
 *
 * Writes made through the judge's own store (a claim, a renewal, a registration)
 * are noted as they commit, so a holder in the judge's own process is never older
 * than its last renewal; another process's leases are first seen at the judge's
 * first observation, and can be declared dead a full lease after that at the
 * earliest.
 */

/** A write (its wait for the lock included) longer than this counts as time the database could not be written, in ms. */
export const BLOCKED_WRITE_MS = 100;

interface Seen {
  stamp: number;
  token: string;
  leaseMs: number;
  /** Monotonic time the stamp was last seen to change. */
  since: number;
  /** blockedTotal() at `since`. */
  blockedAtSince: number;
}

export interface LeaseObservation {
  taskId: number;
  leaseToken: string;
  stamp: number;
  leaseMs: number;
}

export interface AgentObservation {
  agentId: string;
  stamp: number;
  timeoutMs: number;
}

export interface Silent<T> {
  item: T;
  /** How long its stamp stood still on the judge's clock, blocked time excluded, in ms. */
  silentMs: number;
}

export class LivenessJudge {
  private readonly leases = new Map<number, Seen>();
  private readonly agents = new Map<string, Seen>();
  private blocked = 0;
  private blockedEnd = Number.NEGATIVE_INFINITY;

  constructor(readonly monotonic: () => number = () => performance.now()) {}

  /** Time the database could not be written, accumulated, in ms (a union of intervals). */
  blockedTotal(): number {
    return this.blocked;
  }

  /** A write of ours that ran from `startedAt` to now; a long one means nobody else could write meanwhile either. */
  noteWrite(startedAt: number): void {
    const end = this.monotonic();
    if (end - startedAt < BLOCKED_WRITE_MS) return;
    const from = Math.max(startedAt, this.blockedEnd);
    if (end > from) this.blocked += end - from;
    this.blockedEnd = Math.max(this.blockedEnd, end);
  }

  /** Our own committed claim or renewal of these leases. */
  noteLeases(leases: readonly LeaseObservation[]): void {
    const now = this.monotonic();
    for (const lease of leases) this.leases.set(lease.taskId, this.seen(lease.stamp, lease.leaseToken, lease.leaseMs, now));
  }

  /** Our own committed registration or heartbeat. */
  noteAgent(agent: AgentObservation): void {
    this.agents.set(agent.agentId, this.seen(agent.stamp, "", agent.timeoutMs, this.monotonic()));
  }

  /**
   * Starts every silence again from now. After this process waited for the write
   * lock, every holder may have been waiting for it too, since an unknown moment
   * (the lock may have been taken long before we asked for it): nothing it said
   * before can be held against it.
   */
  restartSilence(): void {
    const now = this.monotonic();
    for (const memory of [this.leases, this.agents]) for (const seen of memory.values()) Object.assign(seen, { since: now, blockedAtSince: this.blocked });
  }

  forgetLease(taskId: number): void {
    this.leases.delete(taskId);
  }

  /**
   * Takes the current rows (every lease held, every active agent) and returns those
   * whose stamp has stood still for their whole lease. Rows no longer present are
   * forgotten.
   */
  observe(leases: readonly LeaseObservation[], agents: readonly AgentObservation[]): { leases: Array<Silent<LeaseObservation>>; agents: Array<Silent<AgentObservation>> } {
    return { leases: this.observeLeases(leases), agents: this.observeAgents(agents) };
  }

  /** observe() for the leases alone: every lease held now; what the agents' memory holds is left as it is. */
  observeLeases(leases: readonly LeaseObservation[]): Array<Silent<LeaseObservation>> {
    // A lease is dead once silent for its whole lease.
    return this.judge(this.leases, leases, (l) => l.taskId, (l) => l.leaseToken, (l) => l.leaseMs, 0, this.monotonic());
  }

  /** observe() for the agents alone: every active agent now; what the leases' memory holds is left as it is. */
  observeAgents(agents: readonly AgentObservation[]): Array<Silent<AgentObservation>> {
    // An agent is dead once silent for longer than its timeout.
    return this.judge(this.agents, agents, (a) => a.agentId, () => "", (a) => a.timeoutMs, 1, this.monotonic());
  }

  private judge<K, T extends { stamp: number }>(
    memory: Map<K, Seen>,
    rows: readonly T[],
    key: (row: T) => K,
    token: (row: T) => string,
    limitMs: (row: T) => number,
    beyondMs: number,
    now: number,
  ): Array<Silent<T>> {
    const present = new Set<K>();
    const silent: Array<Silent<T>> = [];
    for (const row of rows) {
      const k = key(row);
      present.add(k);
      const seen = memory.get(k);
      if (seen === undefined || seen.stamp !== row.stamp || seen.token !== token(row)) {
        memory.set(k, this.seen(row.stamp, token(row), limitMs(row), now));
        continue;
      }
      const silentMs = now - seen.since - (this.blocked - seen.blockedAtSince);
      if (silentMs >= limitMs(row) + beyondMs) silent.push({ item: row, silentMs });
    }
    for (const k of memory.keys()) if (!present.has(k)) memory.delete(k);
    return silent;
  }

  private seen(stamp: number, token: string, leaseMs: number, now: number): Seen {
    return { stamp, token, leaseMs, since: now, blockedAtSince: this.blocked };
  }
}
