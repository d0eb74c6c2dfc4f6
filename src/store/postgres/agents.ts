import { randomUUID } from "node:crypto";
import { RosterError } from "../../errors.js";
import type { AgentObservation, LeaseObservation, Silent } from "../liveness.js";
import { LEASED_STATES, type AgentService, type LeaseRef, type TaskState } from "../types.js";
import type { Tx } from "./database.js";
import * as reads from "./reads.js";
import type { PgServiceContext } from "./service-context.js";
import type { PgTransitions } from "./transitions.js";
import { toAgentObservation, type AgentStampRow } from "../reap.js";
import { HELD_LEASE_COLUMNS, leaseEnd, type HeldLeaseRow } from "../session-end.js";

/**
 * A heartbeat's renewal of the leases it found its own under the lock (by primary key, $2 the
 * ids): each stamp moves forward, never back. lease_expires_at is in no index, so the update is
 * HOT when the row's page has room. Params: now, ids.
 */
export const PG_RENEW_SQL = `UPDATE task_status SET lease_expires_at = greatest($1::bigint + lease_ms, lease_expires_at + 1) WHERE task_id = ANY($2::bigint[])
  RETURNING task_id, lease_token, lease_expires_at, lease_ms`;

/**
 * Agent sessions on PostgreSQL (the Store's AgentService): registration, heartbeats that
 * renew an agent's leases in one statement (docs/ARCHITECTURE.md rule 5), deregistration
 * that releases what it held, and the expiry of agents the liveness judge found silent.
 */
export function pgAgentService({ write, read, judge, transitions }: PgServiceContext): AgentService {
  return {
    register: async (p) => {
      if (p.name.trim() === "") throw new RosterError("VALIDATION", "name: must not be empty", { details: { field: "name" } });
      if (!Number.isInteger(p.heartbeatTimeoutMs) || p.heartbeatTimeoutMs <= 0) {
        throw new RosterError("VALIDATION", "heartbeatTimeoutMs: must be a positive integer", { details: { field: "heartbeatTimeoutMs" } });
      }
      const agent = await write("agents.register", async (t) => {
        if (p.personaId != null && (await t.one("SELECT 1 FROM personas WHERE id = $1", [p.personaId])) === undefined) {
          throw new RosterError("PERSONA_NOT_FOUND", `persona: unknown persona "${p.personaId}"`, { details: { field: "persona" } });
        }
        const id = p.id ?? `${p.kind}-${randomUUID()}`;
        await t.run(
          `INSERT INTO agents (id, name, kind, persona_id, status, pid, hostname, heartbeat_timeout_ms, registered_at, last_heartbeat)
           VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, $8)
           ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, persona_id = excluded.persona_id,
             status = 'active', pid = excluded.pid, hostname = excluded.hostname,
             heartbeat_timeout_ms = excluded.heartbeat_timeout_ms, last_heartbeat = excluded.last_heartbeat`,
          [id, p.name, p.kind, p.personaId ?? null, p.pid ?? null, p.hostname ?? null, p.heartbeatTimeoutMs, p.now],
        );
        await transitions.event(t, null, "agent:registered", p.now, id, null, { name: p.name, kind: p.kind, persona: p.personaId ?? null });
        t.emit("agent:registered", { agentId: id });
        return (await reads.getAgent(t, id))!;
      });
      judge.noteAgent({ agentId: agent.id, stamp: agent.lastHeartbeatAt, timeoutMs: agent.heartbeatTimeoutMs });
      return agent;
    },
    heartbeat: async (p) => {
      const out = await write("agents.heartbeat", async (t) => {
        // The lease rows first, then the agent's row (the order a reap takes them), and never waiting
        // for a lease row another transaction holds (SKIP LOCKED): that row is being settled, started,
        // cancelled or reaped, and is renewed next round if it is still ours. A renewal that waited
        // queued behind the completer's settlement of the same leases (a few hundred ms on a loaded
        // host) and, before the rows were taken in one order, deadlocked with it for deadlock_timeout
        // (1 s): a whole lease without a committed renewal stops the supervisor's claims (rule 17;
        // issue 19's chaos stalls). Skipped leases are reported neither renewed nor lost.
        // Each row's lease is read under that lock, so the renewal below names its rows by primary
        // key: a join of the leases given to the agent's rows was read through task_status_agent
        // after statistics that showed it nearly empty, the leases compared again for each row
        // (256 x 256; test/store/postgres-settle-plan.test.ts).
        type Held = { task_id: number; lease_token: string | null; assigned_agent_id: string | null; status: TaskState };
        const held = await t.rows<Held>(
          p.leases === undefined
            ? "SELECT task_id, lease_token, assigned_agent_id, status FROM task_status WHERE assigned_agent_id = $1 AND status IN ('claimed','in_progress') ORDER BY task_id FOR UPDATE SKIP LOCKED"
            : "SELECT task_id, lease_token, assigned_agent_id, status FROM task_status WHERE task_id = ANY($1::bigint[]) ORDER BY task_id FOR UPDATE SKIP LOCKED",
          [p.leases === undefined ? p.agentId : p.leases.map((l) => l.taskId)],
        );
        const free = new Set(held.map((r) => r.task_id));
        const given = p.leases === undefined ? null : new Set(p.leases.map((l) => `${l.taskId}:${l.leaseToken}`));
        const ours = held
          .filter((r) => r.assigned_agent_id === p.agentId && LEASED_STATES.includes(r.status) && (given === null || given.has(`${r.task_id}:${r.lease_token}`)))
          .map((r) => r.task_id);
        // A renewal always moves the stamp forward (docs/ARCHITECTURE.md, "Liveness"); an expired agent that beats again is alive.
        const touched = await t.one<{ last_heartbeat: number; heartbeat_timeout_ms: number }>(
          `UPDATE agents SET last_heartbeat = greatest($1::bigint, last_heartbeat + 1), status = 'active'
           WHERE id = $2 AND status <> 'deregistered' RETURNING last_heartbeat, heartbeat_timeout_ms`,
          [p.now, p.agentId],
        );
        if (touched === undefined) return { agentActive: false, renewed: [] as LeaseRef[], lost: p.leases ?? [], agent: null, leases: [] as LeaseObservation[] };
        type Row = { task_id: number; lease_token: string; lease_expires_at: number; lease_ms: number };
        const rows = ours.length === 0 ? [] : await t.rows<Row>(PG_RENEW_SQL, [p.now, ours]);
        const renewed = rows.map((r) => ({ taskId: r.task_id, leaseToken: r.lease_token }));
        const kept = new Set(renewed.map((r) => `${r.taskId}:${r.leaseToken}`));
        return {
          agentActive: true,
          renewed,
          lost: p.leases === undefined ? [] : p.leases.filter((l) => free.has(l.taskId) && !kept.has(`${l.taskId}:${l.leaseToken}`)),
          agent: { agentId: p.agentId, stamp: touched.last_heartbeat, timeoutMs: touched.heartbeat_timeout_ms } as AgentObservation,
          leases: rows.map((r) => ({ taskId: r.task_id, leaseToken: r.lease_token, stamp: r.lease_expires_at, leaseMs: r.lease_ms })),
        };
      });
      if (out.agent !== null) judge.noteAgent(out.agent);
      judge.noteLeases(out.leases);
      return { agentActive: out.agentActive, renewed: out.renewed, lost: out.lost };
    },
    deregister: async (p) =>
      write("agents.deregister", async (t) => {
        if ((await t.one("SELECT 1 FROM agents WHERE id = $1 FOR UPDATE", [p.agentId])) === undefined) {
          throw new RosterError("AGENT_NOT_FOUND", `agentId: no agent "${p.agentId}"`, { details: { field: "agentId" } });
        }
        const released: number[] = [];
        const failed: number[] = [];
        // Locked in task id order (PgTransitions.lockInIdOrder); a session's end may lose them (../session-end.ts).
        const held = await t.rows<HeldLeaseRow>(
          `SELECT ${HELD_LEASE_COLUMNS} FROM task_status s JOIN tasks t ON t.id = s.task_id
           WHERE s.assigned_agent_id = $1 AND s.status IN ('claimed','in_progress') ORDER BY s.task_id FOR UPDATE OF s`,
          [p.agentId],
        );
        for (const row of held) {
          const end = leaseEnd(row, p);
          if (end.kind === "fail") {
            if ((await transitions.settleFailure(t, end.failure)).ok) failed.push(row.task_id);
            continue;
          }
          if (!(await transitions.release(t, end.release)).ok) continue;
          if (end.countLost) await t.run("UPDATE task_status SET leases_lost = leases_lost + 1 WHERE task_id = $1", [row.task_id]);
          released.push(row.task_id);
        }
        await t.run("UPDATE agents SET status = 'deregistered', last_heartbeat = $2 WHERE id = $1", [p.agentId, p.now]);
        await transitions.event(t, null, "agent:deregistered", p.now, p.agentId, null, { released: released.length, ...(failed.length > 0 ? { failed: failed.length } : {}) });
        t.emit("agent:deregistered", { agentId: p.agentId, released: released.length });
        return { released, failed };
      }),
    list: async (p) => read("agents.list", (q) => reads.listAgents(q, p?.includeInactive ?? false)),
    get: async (p) => read("agents.get", (q) => reads.getAgent(q, p.agentId)),
    expireStale: async (p) => {
      const silent = judge.observeAgents(await read("agents.observe", (q) => observeAgents(q)));
      if (silent.length === 0) return [];
      return write("agents.expireStale", async (t) => {
        const ids = await expireSilent(t, transitions, silent, p.now);
        if (ids.length > 0) t.emit("agent:expired", { agentIds: ids });
        return ids;
      });
    },
  };
}

/** Inside a transaction: the agents the judge found silent for their whole timeout expire, unless a heartbeat moved their stamp since. */
export async function expireSilent(t: Tx, transitions: PgTransitions, silent: ReadonlyArray<Silent<AgentObservation>>, now: number): Promise<string[]> {
  const ids: string[] = [];
  for (const { item, silentMs } of silent) {
    // Conditional on the stamp judged standing still: a heartbeat since keeps the agent.
    const changed = await t.run("UPDATE agents SET status = 'expired' WHERE id = $1 AND status = 'active' AND last_heartbeat = $2", [item.agentId, item.stamp]);
    if (changed === 0) continue;
    await transitions.event(t, null, "agent:expired", now, item.agentId, null, { silentMs: Math.round(silentMs), timeoutMs: item.timeoutMs });
    ids.push(item.agentId);
  }
  return ids;
}

/** Every active agent and its heartbeat stamp, for the liveness judge. A read. */
export async function observeAgents(q: Pick<Tx, "rows">): Promise<AgentObservation[]> {
  return (await q.rows<AgentStampRow>(reads.PG_OBSERVE_AGENTS_SQL)).map(toAgentObservation);
}
