import { nextRunAt, type RetryPolicy } from "../policy/retry.js";
import type { ErrorObject } from "../errors.js";

/**
 * Lost leases (docs/ARCHITECTURE.md, rule 6 and "Liveness"): what the reaper does with
 * a lease whose holder went silent for a whole lease, decided once for every engine.
 *
 * The reaper cannot tell a holder that died because of its task (a native crash, a
 * task that exhausts the host's memory) from one that was cut off from the database,
 * frozen (SIGSTOP, a paused VM) or killed by its operator. So a reaped attempt is not
 * charged to the task's attempts (rule 12: a task fails only for a reason of its own):
 * it goes back to `pending`, uncounted, as a release does, and the task's
 * `leases_lost` goes up by one. That count has a bound of its own, LOST_LEASES_MIN or
 * the task's maxAttempts if larger: the reap that reaches it fails the task
 * (`LEASE_EXPIRED`), so a task that kills its holder every time still ends `failed`.
 *
 * A holder that comes back (its link restored, its process resumed) learns that its
 * lease is gone when it writes (`LEASE_LOST`) and gives it back
 * (`tasks.giveBack`): its attempt was running, so the loss was not the task's. The
 * give-back is fenced by the reaped lease's token (`reaped_token`, the last lease
 * reaped) and takes the lost lease off the count while the task is not finished; a
 * task the reap already failed stays failed (terminal outcomes are final: its
 * dependents were blocked and its watchers told; `roster retry` is the way back).
 */
export const LOST_LEASES_MIN = 3;

/** How many leases a task may lose to the reaper before the reap that reaches the bound fails it. */
export function lostLeasesAllowed(maxAttempts: number): number {
  return Math.max(maxAttempts, LOST_LEASES_MIN);
}

/** What the reap of one silent lease records, `leasesLost` counting this one. */
export type ReapDecision = { outcome: "retrying"; runAt: number } | { outcome: "failed" };

export function reapDecision(p: { leasesLost: number; maxAttempts: number; policy: RetryPolicy; now: number; random: () => number }): ReapDecision {
  if (p.leasesLost >= lostLeasesAllowed(p.maxAttempts)) return { outcome: "failed" };
  // Backoff grows with the leases lost in a row, as it does with failed attempts.
  return { outcome: "retrying", runAt: nextRunAt(p.leasesLost, p.policy, p.now, p.random) };
}

/** The error a reaped lease records (last_error, the task:retrying/failed event). */
export function leaseExpiredError(p: { agentId: string | null; silentMs: number; leaseMs: number; leasesLost: number; maxAttempts: number }): ErrorObject {
  const allowed = lostLeasesAllowed(p.maxAttempts);
  return {
    name: "LeaseExpired",
    code: "LEASE_EXPIRED",
    message:
      `no heartbeat from ${p.agentId ?? "its holder"} for ${p.silentMs} ms (lease ${p.leaseMs} ms): the holder is taken for dead; ` +
      `lease ${p.leasesLost} of ${allowed} the task may lose (the attempt is not counted)`,
    retryable: true,
  };
}

/**
 * A lease whose MCP session ended while holding it (stdio EOF or signal, HTTP DELETE or
 * idle timeout: src/mcp/session.ts). A client that crashes on its task looks the same as
 * one that exits, so, as with a reaped lease, the attempt is not counted (rule 12) but
 * the lease is lost: it counts against the same bound (`leases_lost`), so a task that
 * crashes every client that takes it fails (`AGENT_LEFT`) instead of being offered
 * forever. Below the bound it is released at once (no backoff: most sessions end for
 * reasons of their own), its `task:released` event saying which lease of how many it
 * was. A supervisor's own stop (rule 10) and a server that stops serving its sessions
 * are the operator's acts: they release without counting, as before.
 */
export type SessionEndDecision = { outcome: "released"; reason: string } | { outcome: "failed"; error: ErrorObject };

export function sessionEndDecision(p: { agentId: string; leasesLost: number; maxAttempts: number }): SessionEndDecision {
  const allowed = lostLeasesAllowed(p.maxAttempts);
  const count = `lease ${p.leasesLost} of ${allowed} the task may lose (the attempt is not counted)`;
  if (p.leasesLost < allowed) return { outcome: "released", reason: `session ended: the MCP session of ${p.agentId} ended holding it; ${count}` };
  return {
    outcome: "failed",
    error: {
      name: "AgentLeft",
      code: "AGENT_LEFT",
      message:
        `the MCP session of ${p.agentId} ended holding it (its client exited, crashed or was stopped); ` +
        `${p.leasesLost} of ${allowed} leases the task may lose are lost (sessions that ended holding it, or holders gone silent): ` +
        "it may crash its clients; no attempt was counted",
      retryable: false,
    },
  };
}
