import { randomUUID } from "node:crypto";
import { RosterError } from "../../errors.js";
import type { AgentRecord, HeartbeatParams, HeartbeatResult, LeaseRef, RegisterAgentParams } from "../types.js";
import type { AgentObservation, LeaseObservation, Silent } from "../liveness.js";
import type { Db } from "./database.js";
import { OBSERVE_AGENTS_SQL } from "./maintenance.js";
import { toAgentRecord, type AgentRow } from "../rows.js";
import type { Transitions } from "./transitions.js";
import { toAgentObservation, type AgentStampRow } from "../reap.js";
import { HELD_LEASE_COLUMNS, leaseEnd, type HeldLeaseRow } from "../session-end.js";

/**
 * One statement renews every lease an agent holds (docs/ARCHITECTURE.md, rule 5).
 * A renewal always moves the stamp forward (at least by 1, even when this
 * process's clock stepped back): the reaper judges liveness by the stamp moving,
 * never by comparing it with a clock. Params: @agentId @now.
 */
export const RENEW_ALL_SQL = `
      UPDATE task_status SET lease_expires_at = max(@now + lease_ms, lease_expires_at + 1)
      WHERE assigned_agent_id = @agentId AND status IN ('claimed','in_progress')
      RETURNING task_id, lease_token, lease_expires_at, lease_ms`;

/** Renews the named leases of one agent (@agentId, @leases: a JSON array of {taskId, leaseToken}) in one statement. */
export const RENEW_SOME_SQL = `
      UPDATE task_status SET lease_expires_at = max(@now + lease_ms, lease_expires_at + 1)
      WHERE assigned_agent_id = @agentId AND status IN ('claimed','in_progress')
        AND (task_id, lease_token) IN (
          SELECT json_extract(value, '$.taskId'), json_extract(value, '$.leaseToken') FROM json_each(@leases))
      RETURNING task_id, lease_token, lease_expires_at, lease_ms`;

/** Agent sessions (the seed's IAgentSessionService) and batched lease renewal (docs/ARCHITECTURE.md rule 5). */
export class AgentStatements {
  private readonly insert;
  private readonly touch;
  private readonly renewAll;
  private readonly renewSome;
  private readonly heldLeases;
  private readonly countLost;
  private readonly markDeregistered;
  private readonly expire;
  private readonly observeAgents;
  private readonly listActive;
  private readonly listAll;
  private readonly byId;
  private readonly personaExists;

  constructor(db: Db, private readonly transitions: Transitions) {
    const held = "(SELECT count(*) FROM task_status s WHERE s.assigned_agent_id = a.id AND s.status IN ('claimed','in_progress')) AS held";
    this.insert = db.prepare(`
      INSERT INTO agents (id, name, kind, persona_id, status, pid, hostname, heartbeat_timeout_ms, registered_at, last_heartbeat)
      VALUES (@id, @name, @kind, @personaId, 'active', @pid, @hostname, @heartbeatTimeoutMs, @now, @now)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, persona_id = excluded.persona_id,
        status = 'active', pid = excluded.pid, hostname = excluded.hostname,
        heartbeat_timeout_ms = excluded.heartbeat_timeout_ms, last_heartbeat = excluded.last_heartbeat`);
    // An expired agent that heartbeats again is alive; a deregistered one stays gone.
    this.touch = db.prepare(`
      UPDATE agents SET last_heartbeat = max(@now, last_heartbeat + 1), status = 'active'
      WHERE id = @agentId AND status <> 'deregistered' RETURNING last_heartbeat, heartbeat_timeout_ms`);
    // One statement renews every current lease the agent holds.
    this.renewAll = db.prepare(RENEW_ALL_SQL);
    this.renewSome = db.prepare(RENEW_SOME_SQL);
    this.heldLeases = db.prepare(
      `SELECT ${HELD_LEASE_COLUMNS} FROM task_status s JOIN tasks t ON t.id = s.task_id
       WHERE s.assigned_agent_id = ? AND s.status IN ('claimed','in_progress') ORDER BY s.task_id`,
    );
    // A lease its MCP session ended holding (../session-end.ts): released, and lost.
    this.countLost = db.prepare("UPDATE task_status SET leases_lost = leases_lost + 1 WHERE task_id = ?");
    this.markDeregistered = db.prepare("UPDATE agents SET status = 'deregistered', last_heartbeat = @now WHERE id = @agentId");
    // Conditional on the stamp the judge saw standing still: a heartbeat since then keeps the agent.
    this.expire = db.prepare("UPDATE agents SET status = 'expired' WHERE id = @agentId AND status = 'active' AND last_heartbeat = @stamp");
    this.observeAgents = db.prepare(OBSERVE_AGENTS_SQL);
    this.listActive = db.prepare(`SELECT a.*, ${held} FROM agents a WHERE a.status = 'active' ORDER BY a.registered_at, a.id`);
    this.listAll = db.prepare(`SELECT a.*, ${held} FROM agents a ORDER BY a.registered_at, a.id`);
    this.byId = db.prepare(`SELECT a.*, ${held} FROM agents a WHERE a.id = ?`);
    this.personaExists = db.prepare("SELECT 1 FROM personas WHERE id = ?").pluck();
  }

  register(params: RegisterAgentParams): AgentRecord {
    if (params.name.trim() === "") throw new RosterError("VALIDATION", "name: must not be empty", { details: { field: "name" } });
    if (!Number.isInteger(params.heartbeatTimeoutMs) || params.heartbeatTimeoutMs <= 0) {
      throw new RosterError("VALIDATION", "heartbeatTimeoutMs: must be a positive integer", { details: { field: "heartbeatTimeoutMs" } });
    }
    if (params.personaId != null && this.personaExists.get(params.personaId) === undefined) {
      throw new RosterError("PERSONA_NOT_FOUND", `persona: unknown persona "${params.personaId}"`, { details: { field: "persona" } });
    }
    const id = params.id ?? `${params.kind}-${randomUUID()}`;
    this.insert.run({
      id,
      name: params.name,
      kind: params.kind,
      personaId: params.personaId ?? null,
      pid: params.pid ?? null,
      hostname: params.hostname ?? null,
      heartbeatTimeoutMs: params.heartbeatTimeoutMs,
      now: params.now,
    });
    this.transitions.event(null, "agent:registered", params.now, id, null, { name: params.name, kind: params.kind, persona: params.personaId ?? null });
    return this.get(id)!;
  }

  /** The heartbeat and, for the liveness judge, the stamps it wrote. */
  heartbeat(params: HeartbeatParams): HeartbeatResult & { stamps: { agent: AgentObservation | null; leases: LeaseObservation[] } } {
    const touched = this.touch.get({ now: params.now, agentId: params.agentId }) as { last_heartbeat: number; heartbeat_timeout_ms: number } | undefined;
    if (touched === undefined) return { agentActive: false, renewed: [], lost: params.leases ?? [], stamps: { agent: null, leases: [] } };
    const agent = { agentId: params.agentId, stamp: touched.last_heartbeat, timeoutMs: touched.heartbeat_timeout_ms };
    type Row = { task_id: number; lease_token: string; lease_expires_at: number; lease_ms: number };
    const rows = (
      params.leases === undefined
        ? this.renewAll.all({ now: params.now, agentId: params.agentId })
        : this.renewSome.all({ now: params.now, agentId: params.agentId, leases: JSON.stringify(params.leases) })
    ) as Row[];
    const renewed: LeaseRef[] = rows.map((row) => ({ taskId: row.task_id, leaseToken: row.lease_token }));
    const stamps = { agent, leases: rows.map((row) => ({ taskId: row.task_id, leaseToken: row.lease_token, stamp: row.lease_expires_at, leaseMs: row.lease_ms })) };
    if (params.leases === undefined) return { agentActive: true, renewed, lost: [], stamps };
    const kept = new Set(renewed.map((ref) => `${ref.taskId}:${ref.leaseToken}`));
    return { agentActive: true, renewed, lost: params.leases.filter((ref) => !kept.has(`${ref.taskId}:${ref.leaseToken}`)), stamps };
  }

  deregister(params: { agentId: string; now: number; sessionEnded?: boolean | undefined }): { released: number[]; failed: number[] } {
    if (this.byId.get(params.agentId) === undefined) {
      throw new RosterError("AGENT_NOT_FOUND", `agentId: no agent "${params.agentId}"`, { details: { field: "agentId" } });
    }
    const released: number[] = [];
    const failed: number[] = [];
    for (const row of this.heldLeases.all(params.agentId) as HeldLeaseRow[]) {
      const end = leaseEnd(row, params);
      if (end.kind === "fail") {
        if (this.transitions.settleFailure(end.failure).ok) failed.push(row.task_id);
        continue;
      }
      if (!this.transitions.release(end.release).ok) continue;
      if (end.countLost) this.countLost.run(row.task_id);
      released.push(row.task_id);
    }
    this.markDeregistered.run({ agentId: params.agentId, now: params.now });
    this.transitions.event(null, "agent:deregistered", params.now, params.agentId, null, { released: released.length, ...(failed.length > 0 ? { failed: failed.length } : {}) });
    return { released, failed };
  }

  /** Every active agent's heartbeat stamp, for the liveness judge. A read. */
  observe(): AgentObservation[] {
    return (this.observeAgents.all() as AgentStampRow[]).map(toAgentObservation);
  }

  /** Inside a transaction: marks expired the agents the judge found silent, unless they beat since. */
  expireSilent(silent: ReadonlyArray<Silent<AgentObservation>>, now: number): string[] {
    const ids: string[] = [];
    for (const { item, silentMs } of silent) {
      if (this.expire.run({ agentId: item.agentId, stamp: item.stamp }).changes === 0) continue;
      this.transitions.event(null, "agent:expired", now, item.agentId, null, { silentMs: Math.round(silentMs), timeoutMs: item.timeoutMs });
      ids.push(item.agentId);
    }
    return ids;
  }

  list(includeInactive: boolean): AgentRecord[] {
    return ((includeInactive ? this.listAll : this.listActive).all() as AgentRow[]).map(toAgentRecord);
  }

  get(agentId: string): AgentRecord | null {
    const row = this.byId.get(agentId) as AgentRow | undefined;
    return row === undefined ? null : toAgentRecord(row);
  }
}
