import type { DatabaseIdentity, PersonaRecord, PersonaUpsert, ReapParams, ReapResult } from "../types.js";
import { identityOf } from "../identity.js";
import type { LeaseObservation, Silent } from "../liveness.js";
import type { Db, TransactionRunner } from "./database.js";
import { toPersonaRecord, type PersonaRow } from "../rows.js";
import { RosterError } from "../../errors.js";
import { unknownNameHint } from "../suggest.js";
import type { Transitions } from "./transitions.js";
import { noteReaped, reapedLease, toLeaseObservation, type LeaseStampRow, type SilentLeaseRow } from "../reap.js";

export const REAP_LIMIT_DEFAULT = 1_000;

/**
 * Every lease held, with its renewal stamp, for the liveness judge: a walk of the
 * partial index of leased rows (only they are in it), oldest stamp first. The sort is
 * the statement's own (a few hundred rows at most): an index ordered by the stamp was
 * rewritten by every renewal (migration 0010). A read.
 */
export const OBSERVE_LEASES_SQL = `
      SELECT task_id, lease_token, lease_expires_at, lease_ms FROM task_status INDEXED BY task_status_leased
      WHERE status IN ('claimed','in_progress') ORDER BY lease_expires_at`;

/** Every active agent's heartbeat stamp (the partial agents_active index). A read. */
export const OBSERVE_AGENTS_SQL = "SELECT id, last_heartbeat, heartbeat_timeout_ms FROM agents WHERE status = 'active'";

/** A lease the judge found silent, still exactly as judged (same token, same stamp). Params: @taskId @leaseToken @stamp. */
const SILENT_LEASE_SQL = `
      SELECT s.task_id, s.persona_id, s.attempts, s.max_attempts, s.leases_lost, s.assigned_agent_id, s.lease_ms, t.retry_policy
      FROM task_status s JOIN tasks t ON t.id = s.task_id
      WHERE s.task_id = @taskId AND s.lease_token = @leaseToken AND s.lease_expires_at = @stamp
        AND s.status IN ('claimed','in_progress')`;

/** The lease reaper (docs/ARCHITECTURE.md rule 6), retention, and integrity checks. */
export class MaintenanceStatements {
  private readonly observeLeases;
  private readonly silentLease;
  private readonly pruneCandidates;
  private readonly deleteEvents;
  private readonly deleteDeps;
  private readonly deleteStatus;
  private readonly deleteTasks;
  private readonly raiseHighWater;
  private readonly meta;

  constructor(
    private readonly db: Db,
    private readonly tx: TransactionRunner,
    private readonly transitions: Transitions,
  ) {
    this.observeLeases = db.prepare(OBSERVE_LEASES_SQL);
    this.silentLease = db.prepare(SILENT_LEASE_SQL);
    // Terminal tasks finished before the cut that no surviving task points at.
    this.pruneCandidates = db.prepare(`
      SELECT s.task_id FROM task_status s
      WHERE s.finished_at IS NOT NULL AND s.finished_at < @before AND s.status IN ('completed','failed','cancelled')
        AND NOT EXISTS (
          SELECT 1 FROM task_dependencies d JOIN task_status o ON o.task_id = d.task_id
          WHERE d.depends_on = s.task_id AND NOT (o.finished_at IS NOT NULL AND o.finished_at < @before))
        AND NOT EXISTS (
          SELECT 1 FROM tasks c JOIN task_status o ON o.task_id = c.id
          WHERE c.parent_id = s.task_id AND NOT (o.finished_at IS NOT NULL AND o.finished_at < @before))
      LIMIT 10000`);
    this.deleteEvents = db.prepare("DELETE FROM task_events WHERE task_id IN (SELECT value FROM json_each(?))");
    this.deleteDeps = db.prepare(
      "DELETE FROM task_dependencies WHERE task_id IN (SELECT value FROM json_each(@ids)) OR depends_on IN (SELECT value FROM json_each(@ids))",
    );
    this.deleteStatus = db.prepare("DELETE FROM task_status WHERE task_id IN (SELECT value FROM json_each(?))");
    this.deleteTasks = db.prepare("DELETE FROM tasks WHERE id IN (SELECT value FROM json_each(?))");
    // Task ids are max(id) + 1 (src/store/sqlite/enqueue.ts): the mark keeps a pruned newest id from being given again.
    this.raiseHighWater = db.prepare(`
      UPDATE roster_meta SET value = CAST(max(CAST(value AS INTEGER), coalesce((SELECT max(id) FROM tasks), 0)) AS TEXT)
      WHERE key = 'task_id_high_water'`);
    this.meta = db.prepare("SELECT key, value FROM roster_meta WHERE key IN ('database_id', 'legacy_task_ids_upto')");
  }

  /** Every lease held and its stamp, for the liveness judge. A read. */
  observe(): LeaseObservation[] {
    return (this.observeLeases.all() as LeaseStampRow[]).map(toLeaseObservation);
  }

  /**
   * Inside a transaction: the leases the judge found silent for their whole lease go
   * back to pending with backoff, their attempt not counted, or fail once the task has
   * lost as many leases as it may (src/store/lost-leases.ts: a task that kills its
   * holder every time ends failed). A lease renewed (or settled, or reaped by someone
   * else) since it was judged is left alone.
   */
  reap(silent: ReadonlyArray<Silent<LeaseObservation>>, params: ReapParams): Omit<ReapResult, "expiredAgents"> {
    const out: Omit<ReapResult, "expiredAgents"> = { retried: [], failed: [] };
    for (const { item, silentMs } of silent.slice(0, params.limit ?? REAP_LIMIT_DEFAULT)) {
      const row = this.silentLease.get({ taskId: item.taskId, leaseToken: item.leaseToken, stamp: item.stamp }) as SilentLeaseRow | undefined;
      if (row === undefined) continue;
      const reaped = reapedLease(row, item.leaseToken, silentMs, params);
      this.transitions.event(row.task_id, "lease:expired", params.now, row.assigned_agent_id, row.attempts, reaped.event);
      const expired = noteReaped(out, row, item.leaseToken, this.transitions.settleFailure(reaped.failure));
      if (expired !== null) this.tx.emit("lease:expired", expired);
    }
    return out;
  }

  /** Inside a transaction. */
  prune(before: number): { tasks: number; events: number } {
    const ids = JSON.stringify((this.pruneCandidates.all({ before }) as Array<{ task_id: number }>).map((r) => r.task_id));
    if (ids !== "[]") this.raiseHighWater.run();
    const events = this.deleteEvents.run(ids).changes;
    // better-sqlite3 binds `?1` only from an object; a named parameter says what it is.
    this.deleteDeps.run({ ids });
    this.deleteStatus.run(ids);
    const tasks = this.deleteTasks.run(ids).changes;
    return { tasks, events };
  }

  identity(): DatabaseIdentity {
    return identityOf(this.meta.all() as Array<{ key: string; value: string }>);
  }

  integrityCheck(): string {
    const rows = this.db.pragma("integrity_check") as Array<{ integrity_check: string }>;
    return rows.map((row) => row.integrity_check).join("\n");
  }
}

export class PersonaStatements {
  private readonly upsert;
  private readonly markMissing;
  private readonly byId;
  private readonly all;
  private readonly inService;
  private readonly setRetired;

  constructor(db: Db) {
    this.upsert = db.prepare(`
      INSERT INTO personas (id, name, definition, config, source_path, file_present, created_at, updated_at)
      VALUES (@id, @name, @definition, @config, @sourcePath, 1, @now, @now)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, definition = excluded.definition, config = excluded.config,
        source_path = excluded.source_path, file_present = 1,
        updated_at = CASE WHEN personas.config = excluded.config AND personas.definition = excluded.definition
                          AND personas.name = excluded.name THEN personas.updated_at ELSE excluded.updated_at END`);
    // Database with file fallback: a persona whose file is gone keeps serving, marked as such.
    this.markMissing = db.prepare(`
      UPDATE personas SET file_present = 0
      WHERE file_present = 1 AND source_path IS NOT NULL AND id NOT IN (SELECT value FROM json_each(@ids))
        AND (@dir IS NULL OR substr(source_path, 1, length(@dir)) = @dir)`);
    this.byId = db.prepare("SELECT * FROM personas WHERE id = ?");
    this.all = db.prepare("SELECT * FROM personas ORDER BY id");
    this.inService = db.prepare("SELECT * FROM personas WHERE retired_at IS NULL ORDER BY id");
    this.setRetired = db.prepare("UPDATE personas SET retired_at = @retiredAt, updated_at = @now WHERE id = @id");
  }

  sync(personas: PersonaUpsert[], now: number, sourceDir: string | undefined): void {
    for (const p of personas) {
      this.upsert.run({ id: p.id, name: p.name, definition: p.definition, config: JSON.stringify(p.config), sourcePath: p.sourcePath, now });
    }
    this.markMissing.run({ ids: JSON.stringify(personas.map((p) => p.id)), dir: sourceDir ?? null });
  }

  get(id: string): PersonaRecord | null {
    const row = this.byId.get(id) as PersonaRow | undefined;
    return row === undefined ? null : toPersonaRecord(row);
  }

  list(includeRetired = false): PersonaRecord[] {
    return ((includeRetired ? this.all : this.inService).all() as PersonaRow[]).map(toPersonaRecord);
  }

  /** Inside a transaction. */
  retire(id: string, retired: boolean, now: number): PersonaRecord {
    const row = this.byId.get(id) as PersonaRow | undefined;
    if (row === undefined) {
      const known = (this.all.all() as PersonaRow[]).map((p) => p.id);
      throw new RosterError("PERSONA_NOT_FOUND", `persona: unknown persona "${id}"${unknownNameHint(id, known)}`, { details: { field: "persona", persona: id } });
    }
    // Retiring twice keeps the first time.
    if ((row.retired_at !== null) !== retired) this.setRetired.run({ id, retiredAt: retired ? now : null, now });
    return toPersonaRecord(this.byId.get(id) as PersonaRow);
  }
}
