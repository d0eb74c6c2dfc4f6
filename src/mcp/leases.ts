import type { LeaseRef } from "../store/types.js";

/** A lease handed to an agent; `owed` once the agent called while its renewal could not be written. */
interface HeldLease {
  leaseToken: string;
  owed: boolean;
}

/**
 * The leases this server process handed out through claim_task, per agent, so that
 * heartbeat can tell an agent which of its leases are gone (the store renews what
 * is still held; what we handed out and was not renewed is lost). Memory only: an
 * agent that reconnects to another process still gets its leases renewed, it just
 * is not told about lost ones until its next fenced call answers LEASE_LOST.
 *
 * A lease is marked owed when its agent heartbeated and the renewal could not be
 * written (the database unreachable): the agent was alive, so if the reaper takes
 * the lease meanwhile the loss is this server's, not the task's, and it is given
 * back (./give-back.ts) even if the session ends before the agent hears of it.
 */
export class LeaseBook {
  private readonly byAgent = new Map<string, Map<number, HeldLease>>();

  add(agentId: string, lease: LeaseRef): void {
    let held = this.byAgent.get(agentId);
    if (held === undefined) this.byAgent.set(agentId, (held = new Map()));
    held.set(lease.taskId, { leaseToken: lease.leaseToken, owed: false });
  }

  /** Forgets a lease after complete, fail, release or LEASE_LOST, whoever held it. */
  remove(lease: LeaseRef): void {
    for (const [agentId, held] of this.byAgent) {
      if (held.get(lease.taskId)?.leaseToken === lease.leaseToken) {
        held.delete(lease.taskId);
        if (held.size === 0) this.byAgent.delete(agentId);
      }
    }
  }

  /** The agent called and its renewal could not be written: every lease it holds here is owed a give-back if reaped. */
  markOwed(agentId: string): void {
    for (const lease of this.byAgent.get(agentId)?.values() ?? []) lease.owed = true;
  }

  /**
   * Of the leases handed to `agentId`, those not in `renewed` (perhaps lost: a renewal on
   * PostgreSQL skips a row another transaction holds, and reports it neither way). The
   * renewed ones are no longer owed: the agent's renewal was written.
   */
  notRenewed(agentId: string, renewed: readonly LeaseRef[]): LeaseRef[] {
    const held = this.byAgent.get(agentId);
    if (held === undefined) return [];
    const kept = new Set(renewed.map((ref) => `${ref.taskId}:${ref.leaseToken}`));
    const out: LeaseRef[] = [];
    for (const [taskId, lease] of held) {
      if (kept.has(`${taskId}:${lease.leaseToken}`)) lease.owed = false;
      else out.push({ taskId, leaseToken: lease.leaseToken });
    }
    return out;
  }

  /** Every lease still handed to `agentId`, forgotten (its session ended). */
  forget(agentId: string): Array<LeaseRef & { owed: boolean }> {
    const held = this.byAgent.get(agentId);
    this.byAgent.delete(agentId);
    return [...(held ?? [])].map(([taskId, lease]) => ({ taskId, leaseToken: lease.leaseToken, owed: lease.owed }));
  }
}
