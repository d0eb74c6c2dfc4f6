import type { LeaseRef } from "../store/types.js";

/**
 * The leases this server process handed out through claim_task, per agent, so that
 * heartbeat can tell an agent which of its leases are gone (the store renews what
 * is still held; what we handed out and was not renewed is lost). Memory only: an
 * agent that reconnects to another process still gets its leases renewed, it just
 * is not told about lost ones until its next fenced call answers LEASE_LOST.
 */
export class LeaseBook {
  private readonly byAgent = new Map<string, Map<number, string>>();

  add(agentId: string, lease: LeaseRef): void {
    let held = this.byAgent.get(agentId);
    if (held === undefined) this.byAgent.set(agentId, (held = new Map()));
    held.set(lease.taskId, lease.leaseToken);
  }

  /** Forgets a lease after complete, fail, release or LEASE_LOST, whoever held it. */
  remove(lease: LeaseRef): void {
    for (const [agentId, held] of this.byAgent) {
      if (held.get(lease.taskId) === lease.leaseToken) {
        held.delete(lease.taskId);
        if (held.size === 0) this.byAgent.delete(agentId);
      }
    }
  }

  /** Of the leases handed to `agentId`, those not in `renewed`; they are forgotten. */
  settleHeartbeat(agentId: string, renewed: readonly LeaseRef[]): LeaseRef[] {
    const held = this.byAgent.get(agentId);
    if (held === undefined) return [];
    const kept = new Set(renewed.map((ref) => `${ref.taskId}:${ref.leaseToken}`));
    const lost: LeaseRef[] = [];
    for (const [taskId, leaseToken] of held) {
      if (!kept.has(`${taskId}:${leaseToken}`)) lost.push({ taskId, leaseToken });
    }
    for (const ref of lost) held.delete(ref.taskId);
    if (held.size === 0) this.byAgent.delete(agentId);
    return lost;
  }
}
