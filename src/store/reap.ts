/**
 * What the reaper decides for a silent lease, without the database (docs/ARCHITECTURE.md,
 * "Liveness", rules 6 and 12), once for both engines: the rows the liveness judge observes,
 * the `lease:expired` audit data, the counted failure a reaped lease settles as (its
 * attempt not counted, the lost lease counted: src/store/lost-leases.ts), and the reap's
 * answer. SQLite (src/store/sqlite/maintenance.ts) and PostgreSQL
 * (src/store/postgres/maintenance.ts) each read and lock the row with their own SQL.
 */
import { failureToSettle } from "./settle.js";
import type { AgentObservation, LeaseObservation } from "./liveness.js";
import { leaseExpiredError } from "./lost-leases.js";
import type { CountedFailure, ReapParams, ReapResult } from "./types.js";

/** A held lease and its renewal stamp, as the judge's observation reads it. */
export interface LeaseStampRow {
  task_id: number;
  lease_token: string;
  lease_expires_at: number;
  lease_ms: number;
}

export function toLeaseObservation(r: LeaseStampRow): LeaseObservation {
  return { taskId: r.task_id, leaseToken: r.lease_token, stamp: r.lease_expires_at, leaseMs: r.lease_ms };
}

/** An active agent and its heartbeat stamp, as the judge's observation reads it. */
export interface AgentStampRow {
  id: string;
  last_heartbeat: number;
  heartbeat_timeout_ms: number;
}

export function toAgentObservation(r: AgentStampRow): AgentObservation {
  return { agentId: r.id, stamp: r.last_heartbeat, timeoutMs: r.heartbeat_timeout_ms };
}

/** A silent lease's row, still exactly as judged (same token, same stamp). */
export interface SilentLeaseRow {
  task_id: number;
  persona_id: string;
  attempts: number;
  max_attempts: number;
  leases_lost: number;
  assigned_agent_id: string | null;
  lease_ms: number;
  retry_policy: string;
}

/**
 * For a silent lease: its `lease:expired` event data and the failure it settles as (each
 * engine's settleFailure): retryable, the attempt given back, the lost lease counted
 * against its own bound.
 */
export function reapedLease(row: SilentLeaseRow, leaseToken: string, silentMs: number, p: ReapParams) {
  const heard = Math.round(silentMs);
  const leasesLost = row.leases_lost + 1;
  return {
    event: { silentMs: heard, leaseMs: row.lease_ms, leasesLost },
    failure: {
      ...failureToSettle(row.task_id, row, leaseExpiredError({ agentId: row.assigned_agent_id, silentMs: heard, leaseMs: row.lease_ms, leasesLost, maxAttempts: row.max_attempts }), p),
      lost: { leaseToken, leasesLost },
    },
  };
}

/** Adds a settled reap to the reap's answer; the `lease:expired` store event's payload, or null when the lease was not current any more. */
export function noteReaped(
  out: Omit<ReapResult, "expiredAgents">,
  row: SilentLeaseRow,
  leaseToken: string,
  result: CountedFailure | { ok: false },
): { taskId: number; leaseToken: string; persona: string; attempt: number; outcome: "retrying" | "failed" } | null {
  if (!result.ok) return null;
  const lease = { taskId: row.task_id, leaseToken, persona: row.persona_id, attempt: row.attempts };
  if (result.outcome === "retrying") out.retried.push({ ...lease, runAt: result.runAt });
  else out.failed.push(lease);
  return { ...lease, outcome: result.outcome };
}
