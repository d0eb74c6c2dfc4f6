import { RosterError } from "../../errors.js";
import { BLOCKED_WRITE_MS, type LeaseObservation, type Silent } from "../liveness.js";
import { unknownNameHint } from "../suggest.js";
import { identityOf } from "../identity.js";
import type { DatabaseIdentity, MaintenanceService, PersonaService, ReapParams, ReapResult } from "../types.js";
import { expireSilent, observeAgents } from "./agents.js";
import type { Tx } from "./database.js";
import * as reads from "./reads.js";
import type { PgServiceContext } from "./service-context.js";
import type { PgTransitions } from "./transitions.js";
import { noteReaped, reapedLease, toLeaseObservation, type LeaseStampRow, type SilentLeaseRow } from "../reap.js";

/**
 * Maintenance on PostgreSQL (the Store's MaintenanceService): the reaper, which returns
 * silent holders' leases as the liveness judge decides (docs/ARCHITECTURE.md, "Liveness",
 * rule 6), pruning of finished tasks, and the invariants check.
 */
export function pgMaintenanceService({ write, read, judge, transitions }: PgServiceContext): MaintenanceService {
  let identity: DatabaseIdentity | undefined;
  return {
    reapExpired: async (p) => {
      const observed = await read("maintenance.observe", async (q) => ({ leases: await observeLeases(q), agents: await observeAgents(q) }));
      const silent = judge.observe(observed.leases, observed.agents);
      if (silent.leases.length === 0 && silent.agents.length === 0) return { retried: [], failed: [], expiredAgents: [] };
      const asked = judge.monotonic();
      return write("maintenance.reap", async (t) => {
        // Having waited to write, every holder may have been waiting too: judge nobody now (docs/ARCHITECTURE.md, "Liveness").
        if (judge.monotonic() - asked >= BLOCKED_WRITE_MS) {
          judge.restartSilence();
          return { retried: [], failed: [], expiredAgents: [] };
        }
        const reaped = await reap(t, transitions, silent.leases, p);
        const expiredAgents = await expireSilent(t, transitions, silent.agents, p.now);
        if (expiredAgents.length > 0) t.emit("agent:expired", { agentIds: expiredAgents });
        return { ...reaped, expiredAgents };
      });
    },
    prune: async (p) =>
      write("maintenance.prune", async (t) => {
        const ids = (
          await t.rows<{ task_id: number }>(
            `SELECT s.task_id FROM task_status s
             WHERE s.finished_at IS NOT NULL AND s.finished_at < $1 AND s.status IN ('completed','failed','cancelled')
               AND NOT EXISTS (SELECT 1 FROM task_dependencies d JOIN task_status o ON o.task_id = d.task_id
                               WHERE d.depends_on = s.task_id AND NOT (o.finished_at IS NOT NULL AND o.finished_at < $1))
               AND NOT EXISTS (SELECT 1 FROM tasks c JOIN task_status o ON o.task_id = c.id
                               WHERE c.parent_id = s.task_id AND NOT (o.finished_at IS NOT NULL AND o.finished_at < $1))
             LIMIT 10000`,
            [p.before],
          )
        ).map((r) => r.task_id);
        if (ids.length === 0) return { tasks: 0, events: 0 };
        const events = await t.run("DELETE FROM task_events WHERE task_id = ANY($1::bigint[])", [ids]);
        await t.run("DELETE FROM task_dependencies WHERE task_id = ANY($1::bigint[]) OR depends_on = ANY($1::bigint[])", [ids]);
        await t.run("DELETE FROM task_status WHERE task_id = ANY($1::bigint[])", [ids]);
        // A pruned task may still be the parent of pruned children: clear the links, then delete.
        await t.run("UPDATE tasks SET parent_id = NULL WHERE parent_id = ANY($1::bigint[])", [ids]);
        const tasks = await t.run("DELETE FROM tasks WHERE id = ANY($1::bigint[])", [ids]);
        return { tasks, events };
      }),
    identity: async () =>
      (identity ??= await read("maintenance.identity", async (q) =>
        identityOf(await q.rows<{ key: string; value: string }>("SELECT key, value FROM roster_meta WHERE key IN ('database_id', 'legacy_task_ids_upto')")),
      )),
    integrityCheck: async () =>
      read("maintenance.integrityCheck", async (q) => {
        // No page-level check as SQLite's integrity_check: the invariants the store keeps instead.
        const bad = await q.rows<{ problem: string }>(
          `SELECT 'task ' || task_id || ' is leased without a token' AS problem FROM task_status
             WHERE status IN ('claimed','in_progress') AND (lease_token IS NULL OR lease_expires_at IS NULL)
           UNION ALL
           SELECT 'task ' || id || ' has no status row' FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM task_status s WHERE s.task_id = t.id)
           LIMIT 100`,
        );
        return bad.length === 0 ? "ok" : bad.map((b) => b.problem).join("\n");
      }),
  };
}

/**
 * Inside a transaction: the leases the judge found silent for their whole lease go back
 * to pending with backoff, their attempt not counted, or fail once the task has lost as
 * many leases as it may (src/store/lost-leases.ts). A lease renewed, settled or reaped
 * since it was judged is left alone.
 */
async function reap(t: Tx, transitions: PgTransitions, silent: ReadonlyArray<Silent<LeaseObservation>>, p: ReapParams): Promise<Omit<ReapResult, "expiredAgents">> {
  const out: Omit<ReapResult, "expiredAgents"> = { retried: [], failed: [] };
  // In task id order (PgTransitions.lockInIdOrder), not the judge's: the holder may be settling them right now.
  const batch = silent.slice(0, p.limit ?? 1_000).sort((x, y) => x.item.taskId - y.item.taskId);
  for (const { item, silentMs } of batch) {
    // Still exactly as judged (same token, same stamp), locked: a renewal or settlement since leaves it alone.
    const row = await t.one<SilentLeaseRow>(
      `SELECT s.task_id, s.persona_id, s.attempts, s.max_attempts, s.leases_lost, s.assigned_agent_id, s.lease_ms, t.retry_policy
       FROM task_status s JOIN tasks t ON t.id = s.task_id
       WHERE s.task_id = $1 AND s.lease_token = $2 AND s.lease_expires_at = $3 AND s.status IN ('claimed','in_progress')
       FOR UPDATE OF s`,
      [item.taskId, item.leaseToken, item.stamp],
    );
    if (row === undefined) continue;
    const reaped = reapedLease(row, item.leaseToken, silentMs, p);
    await transitions.event(t, row.task_id, "lease:expired", p.now, row.assigned_agent_id, row.attempts, reaped.event);
    const expired = noteReaped(out, row, item.leaseToken, await transitions.settleFailure(t, reaped.failure));
    if (expired !== null) t.emit("lease:expired", expired);
  }
  return out;
}

const PERSONA_SQL = `
  INSERT INTO personas (id, name, definition, config, source_path, file_present, created_at, updated_at)
  VALUES ($1, $2, $3, $4, $5, true, $6, $6)
  ON CONFLICT (id) DO UPDATE SET name = excluded.name, definition = excluded.definition, config = excluded.config,
    source_path = excluded.source_path, file_present = true,
    updated_at = CASE WHEN personas.config = excluded.config AND personas.definition = excluded.definition
                      AND personas.name = excluded.name THEN personas.updated_at ELSE excluded.updated_at END`;

/** Personas on PostgreSQL (the Store's PersonaService): synced from their files, kept when a file is gone, retired by hand. */
export function pgPersonaService({ write, read }: PgServiceContext): PersonaService {
  return {
    sync: async (p) =>
      write("personas.sync", async (t) => {
        for (const persona of p.personas) {
          await t.run(PERSONA_SQL, [persona.id, persona.name, persona.definition, JSON.stringify(persona.config), persona.sourcePath, p.now]);
        }
        // Database with file fallback: a persona whose file is gone keeps serving, marked as such.
        await t.run(
          `UPDATE personas SET file_present = false
           WHERE file_present AND source_path IS NOT NULL AND NOT (id = ANY($1::text[]))
             AND ($2::text IS NULL OR substr(source_path, 1, length($2)) = $2)`,
          [p.personas.map((x) => x.id), p.sourceDir ?? null],
        );
      }),
    get: async (p) => read("personas.get", (q) => reads.getPersona(q, p.id)),
    list: async (p) => read("personas.list", (q) => reads.listPersonas(q, p?.includeRetired === true)),
    retire: async (p) =>
      write("personas.retire", async (t) => {
        const row = await t.one<{ retired_at: number | null }>("SELECT retired_at FROM personas WHERE id = $1 FOR UPDATE", [p.id]);
        if (row === undefined) {
          const known = (await t.rows<{ id: string }>("SELECT id FROM personas ORDER BY id")).map((r) => r.id);
          throw new RosterError("PERSONA_NOT_FOUND", `persona: unknown persona "${p.id}"${unknownNameHint(p.id, known)}`, { details: { field: "persona", persona: p.id } });
        }
        if ((row.retired_at !== null) !== p.retired) await t.run("UPDATE personas SET retired_at = $2, updated_at = $3 WHERE id = $1", [p.id, p.retired ? p.now : null, p.now]);
        return (await reads.getPersona(t, p.id))!;
      }),
  };
}

async function observeLeases(q: Pick<Tx, "rows">): Promise<LeaseObservation[]> {
  return (await q.rows<LeaseStampRow>(reads.PG_OBSERVE_LEASES_SQL)).map(toLeaseObservation);
}
