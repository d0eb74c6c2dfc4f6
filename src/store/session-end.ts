/**
 * What an agent's deregistration does with each lease it still holds, decided once for
 * both engines (src/store/sqlite/agents.ts, src/store/postgres/agents.ts). Released
 * without counting the attempt, always (rule 12); when its MCP session ended holding it
 * (`sessionEnded`), the lease is also lost: counted against the task's bound of lost
 * leases, and the end that reaches the bound fails the task (`AGENT_LEFT`, through the
 * reap's path: the attempt uncounted, dependents blocked). See src/store/lost-leases.ts.
 */
import { sessionEndDecision } from "./lost-leases.js";
import { failureToSettle, type FailingTaskRow } from "./settle.js";
import type { FailureToSettle, ReleaseParams } from "./transition-types.js";

/** The columns of a held lease's row (`s`: task_status, `t`: tasks) a deregistration reads. */
export const HELD_LEASE_COLUMNS = "s.task_id, s.lease_token, s.persona_id, s.attempts, s.max_attempts, s.leases_lost, s.assigned_agent_id, t.retry_policy";

export interface HeldLeaseRow extends FailingTaskRow {
  task_id: number;
  lease_token: string;
  leases_lost: number;
}

/** What a deregistration writes for one held lease. `countLost`: add it to the task's `leases_lost` once released. */
export type LeaseEnd = { kind: "release"; release: ReleaseParams; countLost: boolean } | { kind: "fail"; failure: FailureToSettle };

export function leaseEnd(row: HeldLeaseRow, p: { agentId: string; now: number; sessionEnded?: boolean | undefined }): LeaseEnd {
  const lease = { taskId: row.task_id, leaseToken: row.lease_token, now: p.now };
  if (p.sessionEnded !== true) return { kind: "release", release: { ...lease, reason: "agent deregistered" }, countLost: false };
  const leasesLost = row.leases_lost + 1;
  const decision = sessionEndDecision({ agentId: p.agentId, leasesLost, maxAttempts: row.max_attempts });
  if (decision.outcome === "released") return { kind: "release", release: { ...lease, reason: decision.reason }, countLost: true };
  return { kind: "fail", failure: { ...failureToSettle(row.task_id, row, decision.error, p), lost: { leaseToken: row.lease_token, leasesLost } } };
}
