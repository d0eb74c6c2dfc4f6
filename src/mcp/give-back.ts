import type { Clock } from "../clock.js";
import { coerceError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { HeartbeatResult, LeaseRef, Store } from "../store/index.js";
import type { LeaseBook } from "./leases.js";

/** How long a session's last writes (its agent's deregistration, its give-backs) are retried while the database is unreachable, in ms. */
export const SESSION_END_RETRY_MS_DEFAULT = 5 * 60_000;
/** Backoff between those tries: 50 ms doubling to 2 s (as a failed claim's, docs/ARCHITECTURE.md rule 13). */
export const SESSION_END_RETRY_FIRST_MS = 50;
export const SESSION_END_RETRY_MAX_MS = 2_000;

/**
 * Reaped leases that MCP agents give back (docs/ARCHITECTURE.md rule 6 and "Liveness";
 * src/store/lost-leases.ts), as a supervisor does when it comes back to find its leases
 * reaped. The reaper cannot tell a holder killed by its task from one that was only
 * silent: an agent whose session this server could not renew (the database unreachable)
 * or that paused longer than its lease. So a reaped lease counts against its task's own
 * bound of lost leases, and an agent that shows it is alive after the loss gives the
 * lease back, taken off that count: it heartbeats and learns the lease is lost, it
 * writes under the lease and is refused (LEASE_LOST), or it heartbeated while this
 * server could not reach the database (the lease was owed: ./leases.ts) and its session
 * then ended. The store fences each give-back by the reaped lease's token, so a lease
 * lost to a cancel, a completion or a later reap changes nothing. A give-back the
 * database did not take is kept and tried again at the agent's next give-back or at
 * its session's end. An agent that never comes back gives nothing back, and a task
 * that silences its agent every time still fails at its bound.
 */
export class LeaseReturns {
  /** Give-backs not written yet, per agent, by lease token. */
  private readonly unwritten = new Map<string, Map<string, LeaseRef>>();

  constructor(private readonly store: Store, private readonly clock: Clock, private readonly logger: Logger) {}

  /**
   * Gives back `leases` of `agentId`, and any earlier give-back of it not written yet;
   * the task ids whose lost leases went down. Never rejects: a failed write keeps them.
   */
  async give(agentId: string, leases: readonly LeaseRef[]): Promise<number[]> {
    try {
      return await this.giveOrThrow(agentId, leases);
    } catch (error) {
      this.logger.warn({ agentId, err: coerceError(error) }, "giving back reaped leases failed; will try again");
      return [];
    }
  }

  /** give(), but a failed write (kept for later) rejects. */
  async giveOrThrow(agentId: string, leases: readonly LeaseRef[]): Promise<number[]> {
    const all = this.unwritten.get(agentId) ?? new Map<string, LeaseRef>();
    for (const lease of leases) all.set(lease.leaseToken, { taskId: lease.taskId, leaseToken: lease.leaseToken });
    this.unwritten.delete(agentId);
    if (all.size === 0) return [];
    try {
      const { given } = await this.store.tasks.giveBack({ leases: [...all.values()], agentId, now: this.clock.now() });
      if (given.length > 0) {
        this.logger.info({ agentId, given: given.map((l) => l.taskId) }, "reaped leases given back: the agent was alive, the loss was not the tasks'");
      }
      return given.map((l) => l.taskId);
    } catch (error) {
      this.unwritten.set(agentId, all);
      throw error;
    }
  }
}

/**
 * The heartbeat tool's renewal: every lease of the agent, and which of the leases this
 * process handed it are lost, given back. An unwritten renewal (the database unreachable)
 * marks the agent's leases owed and rejects. A lease not renewed is checked once more by
 * itself before it is called lost: on PostgreSQL a renewal skips a row another
 * transaction holds (the agent's own complete_task, say), which is neither renewed nor
 * lost (the check reports it lost only if it is free and not the agent's).
 */
export async function renewAgentLeases(ctx: { store: Store; clock: Clock; leases: LeaseBook; returns: LeaseReturns }, agentId: string): Promise<HeartbeatResult> {
  const { store, clock, leases } = ctx;
  let beat: HeartbeatResult;
  try {
    beat = await store.agents.heartbeat({ agentId, now: clock.now() });
  } catch (error) {
    leases.markOwed(agentId);
    throw error;
  }
  const unsure = leases.notRenewed(agentId, beat.renewed);
  if (unsure.length === 0) return { ...beat, lost: [] };
  const check = beat.agentActive ? await store.agents.heartbeat({ agentId, leases: unsure, now: clock.now() }) : { renewed: [], lost: unsure };
  for (const ref of check.lost) leases.remove(ref);
  await ctx.returns.give(agentId, check.lost);
  return { agentActive: beat.agentActive, renewed: [...beat.renewed, ...check.renewed], lost: check.lost };
}
