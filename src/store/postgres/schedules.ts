import type { RosterError } from "../../errors.js";
import type { FireParams, FireResult, ScheduleRecord, ScheduleUpsert } from "../types.js";
import {
  DUE_LIMIT_DEFAULT,
  autoPausedData,
  type ScheduleRow,
  checkFire,
  fireInputs,
  resumeCursor,
  scheduleNotFound,
  schedulePersonaError,
  scheduleValues,
  skippedData,
  storedSchedulePersonaError,
  toSchedule,
  upsertEvent,
  validateSchedules,
} from "../schedules.js";
import type { Tx } from "./database.js";
import { personaMissing, writeBatch } from "./enqueue.js";

type Q = Pick<Tx, "rows" | "one">;

async function event(tx: Tx, taskId: number | null, type: string, now: number, agentId: string | null, data: unknown): Promise<void> {
  await tx.run("INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES ($1, $2, $3, $4, NULL, $5)", [taskId, type, now, agentId, JSON.stringify(data)]);
}

/** PERSONA_NOT_FOUND (storedSchedulePersonaError) when the schedule's persona is not in service, else null. */
async function personaProblem(tx: Tx, row: ScheduleRow): Promise<RosterError | null> {
  const { persona } = toSchedule(row).task;
  const missing = await personaMissing(tx, persona);
  return missing === null ? null : storedSchedulePersonaError(row.id, persona, missing);
}

/**
 * Schedules on PostgreSQL, as src/store/sqlite/schedules.ts: the store keeps each
 * schedule's cursor; a fire is taken by compare-and-set on next_fire_at (an UPDATE
 * conditional on the value read, so of two hosts that see one due schedule one takes
 * it), and each fire's task carries fireKey().
 */
export class PgSchedules {
  constructor(private readonly maxPayloadBytes: number) {}

  async upsert(tx: Tx, schedules: ScheduleUpsert[], now: number): Promise<ScheduleRecord[]> {
    validateSchedules(schedules, this.maxPayloadBytes);
    for (const [index, s] of schedules.entries()) {
      const missing = await personaMissing(tx, s.task.persona);
      if (missing !== null) throw schedulePersonaError(index, s.task.persona, missing);
    }
    for (const s of schedules) {
      const v = scheduleValues(s);
      const existing = await tx.one("SELECT 1 FROM schedules WHERE id = $1 FOR UPDATE", [s.id]);
      const params = [v.id, v.cron, v.timezone, v.task, v.missed, v.source, v.nextFireAt, now];
      if (existing === undefined) {
        await tx.run(
          "INSERT INTO schedules (id, cron, timezone, task, missed, source, next_fire_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
          params,
        );
      } else {
        // A changed cron or zone restarts the cursor; otherwise it is kept (a re-sync does not re-fire or skip).
        await tx.run(
          `UPDATE schedules SET task = $4, missed = $5, source = $6, updated_at = $8,
             next_fire_at = CASE WHEN cron = $2 AND timezone IS NOT DISTINCT FROM $3 THEN next_fire_at ELSE $7 END,
             cron = $2, timezone = $3
           WHERE id = $1`,
          params,
        );
      }
      const e = upsertEvent(v, existing !== undefined);
      await event(tx, null, e.type, now, e.agentId, e.data);
    }
    const out: ScheduleRecord[] = [];
    for (const s of schedules) out.push((await this.get(tx, s.id))!);
    return out;
  }

  async list(q: Q): Promise<ScheduleRecord[]> {
    return (await q.rows<ScheduleRow>("SELECT * FROM schedules ORDER BY id")).map(toSchedule);
  }

  async get(q: Q, id: string): Promise<ScheduleRecord | null> {
    const row = await q.one<ScheduleRow>("SELECT * FROM schedules WHERE id = $1", [id]);
    return row === undefined ? null : toSchedule(row);
  }

  async remove(tx: Tx, id: string, now: number): Promise<void> {
    if ((await tx.run("DELETE FROM schedules WHERE id = $1", [id])) === 0) throw scheduleNotFound(id);
    await event(tx, null, "schedule:removed", now, null, { schedule: id });
  }

  async pause(tx: Tx, p: { id: string; paused: boolean; nextFireAt?: number | null | undefined; now: number }): Promise<ScheduleRecord> {
    const cursor = resumeCursor(p);
    const row = await tx.one<ScheduleRow>("SELECT * FROM schedules WHERE id = $1 FOR UPDATE", [p.id]);
    if (row === undefined) throw scheduleNotFound(p.id);
    const problem = p.paused ? null : await personaProblem(tx, row);
    if (problem !== null) throw problem;
    // A resume may set the cursor to NULL (no next fire), so whether to set it is its own parameter.
    await tx.run("UPDATE schedules SET paused_at = $2, next_fire_at = CASE WHEN $5::boolean THEN $3::bigint ELSE next_fire_at END, updated_at = $4 WHERE id = $1", [
      p.id,
      p.paused ? (row.paused_at ?? p.now) : null,
      cursor.nextFireAt,
      p.now,
      cursor.set,
    ]);
    await event(tx, null, p.paused ? "schedule:paused" : "schedule:resumed", p.now, null, { schedule: p.id });
    return (await this.get(tx, p.id))!;
  }

  async due(q: Q, now: number, limit = DUE_LIMIT_DEFAULT): Promise<ScheduleRecord[]> {
    return (await q.rows<ScheduleRow>("SELECT * FROM schedules WHERE paused_at IS NULL AND next_fire_at <= $1 ORDER BY next_fire_at LIMIT $2", [now, limit])).map(toSchedule);
  }

  async nextFireAt(q: Q): Promise<number | null> {
    return (await q.one<{ t: number | null }>("SELECT min(next_fire_at) AS t FROM schedules WHERE paused_at IS NULL"))?.t ?? null;
  }

  async fire(tx: Tx, p: FireParams): Promise<FireResult> {
    const { lastFireAt } = checkFire(p);
    const current = await tx.one<ScheduleRow>("SELECT * FROM schedules WHERE id = $1", [p.scheduleId]);
    if (current === undefined) return { fired: false, taskIds: [] };
    const problem = await personaProblem(tx, current);
    if (problem !== null) {
      // Paused instead of fired, by the same compare-and-set: one process pauses it and says why.
      const paused = await tx.run("UPDATE schedules SET paused_at = $3, updated_at = $3 WHERE id = $1 AND next_fire_at = $2 AND paused_at IS NULL", [
        p.scheduleId,
        p.expectedNextFireAt,
        p.now,
      ]);
      if (paused === 0) return { fired: false, taskIds: [] };
      await event(tx, null, "schedule:paused", p.now, p.by, autoPausedData(current.id, p.by, problem));
      return { fired: false, taskIds: [], paused: { code: "PERSONA_NOT_FOUND", message: problem.message } };
    }
    // Compare-and-set: only the taker whose expected cursor still stands moves it (the row lock orders two takers).
    const row = await tx.one<ScheduleRow>(
      `UPDATE schedules SET next_fire_at = $3, last_fire_at = coalesce($4, last_fire_at), updated_at = $5
       WHERE id = $1 AND next_fire_at = $2 AND paused_at IS NULL RETURNING *`,
      [p.scheduleId, p.expectedNextFireAt, p.nextFireAt, lastFireAt, p.now],
    );
    if (row === undefined) return { fired: false, taskIds: [] };
    if (p.skipped.length > 0) await event(tx, null, "schedule:skipped", p.now, p.by, skippedData(p));
    if (p.fireAts.length === 0) return { fired: true, taskIds: [] };
    const written = await writeBatch(tx, fireInputs(row, p.fireAts, this.maxPayloadBytes), { parentId: null, createdBy: `schedule:${row.id}`, now: p.now });
    const created = new Set(written.created);
    for (const [i, taskId] of written.ids.entries()) {
      if (created.has(taskId)) await event(tx, taskId, "schedule:fired", p.now, p.by, { schedule: row.id, fireAt: p.fireAts[i]!, cron: row.cron });
    }
    if (written.created.length > 0) {
      tx.emit("task:enqueued", { ids: written.created, personas: written.personas, ready: written.statuses.filter((s) => s === "pending").length });
    }
    return { fired: true, taskIds: written.ids };
  }
}
