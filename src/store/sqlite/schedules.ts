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
import type { RosterError } from "../../errors.js";
import type { Db, TransactionRunner } from "./database.js";
import type { Enqueuer } from "./enqueue.js";

// src/supervisor/scheduler.ts reads the fire bound from here; the value is the shared one.

/**
 * Schedules (recurring tasks). The store keeps each schedule's cursor; the cron
 * arithmetic is the caller's (src/supervisor/scheduler.ts), which passes fire
 * times in. A fire is taken by compare-and-set on next_fire_at, and each fire's
 * task carries fireKey(): two supervisors that see the same due schedule enqueue
 * one task between them, and the loser writes nothing.
 */
export class ScheduleStatements {
  private readonly byId;
  private readonly all;
  private readonly dueStmt;
  private readonly insertStmt;
  private readonly updateStmt;
  private readonly deleteStmt;
  private readonly pauseStmt;
  private readonly advanceStmt;
  private readonly autoPauseStmt;
  private readonly nextStmt;
  private readonly insertEvent;

  constructor(
    db: Db,
    private readonly tx: TransactionRunner,
    private readonly enqueuer: Enqueuer,
    private readonly maxPayloadBytes: number,
  ) {
    this.byId = db.prepare("SELECT * FROM schedules WHERE id = ?");
    this.all = db.prepare("SELECT * FROM schedules ORDER BY id");
    this.dueStmt = db.prepare("SELECT * FROM schedules WHERE paused_at IS NULL AND next_fire_at <= @now ORDER BY next_fire_at LIMIT @limit");
    this.insertStmt = db.prepare(`
      INSERT INTO schedules (id, cron, timezone, task, missed, source, next_fire_at, created_at, updated_at)
      VALUES (@id, @cron, @timezone, @task, @missed, @source, @nextFireAt, @now, @now)`);
    // A changed cron or zone restarts the cursor; otherwise it is kept (a re-sync does not re-fire or skip).
    this.updateStmt = db.prepare(`
      UPDATE schedules SET task = @task, missed = @missed, source = @source, updated_at = @now,
        next_fire_at = CASE WHEN cron = @cron AND timezone IS @timezone THEN next_fire_at ELSE @nextFireAt END,
        cron = @cron, timezone = @timezone
      WHERE id = @id`);
    this.deleteStmt = db.prepare("DELETE FROM schedules WHERE id = ?");
    // A resume may set the cursor to NULL (no next fire), so whether to set it is its own parameter.
    this.pauseStmt = db.prepare(`
      UPDATE schedules SET paused_at = @pausedAt, next_fire_at = CASE WHEN @setNext = 1 THEN @nextFireAt ELSE next_fire_at END, updated_at = @now WHERE id = @id`);
    this.advanceStmt = db.prepare(`
      UPDATE schedules SET next_fire_at = @nextFireAt, last_fire_at = coalesce(@lastFireAt, last_fire_at), updated_at = @now
      WHERE id = @id AND next_fire_at = @expected AND paused_at IS NULL`);
    // A fire that finds the persona gone pauses the schedule instead, by the same compare-and-set.
    this.autoPauseStmt = db.prepare(`
      UPDATE schedules SET paused_at = @now, updated_at = @now WHERE id = @id AND next_fire_at = @expected AND paused_at IS NULL`);
    this.nextStmt = db.prepare("SELECT min(next_fire_at) FROM schedules WHERE paused_at IS NULL").pluck();
    this.insertEvent = db.prepare(
      "INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES (@taskId, @type, @now, @agentId, NULL, @data)",
    );
  }

  private event(taskId: number | null, type: string, now: number, agentId: string | null, data: unknown): void {
    this.insertEvent.run({ taskId, type, now, agentId, data: JSON.stringify(data) });
  }

  upsert(schedules: ScheduleUpsert[], now: number): ScheduleRecord[] {
    validateSchedules(schedules, this.maxPayloadBytes);
    schedules.forEach((s, index) => {
      const missing = this.enqueuer.personaMissing(s.task.persona);
      if (missing !== null) throw schedulePersonaError(index, s.task.persona, missing);
    });
    for (const s of schedules) {
      const values = scheduleValues(s);
      const existing = this.byId.get(s.id) as ScheduleRow | undefined;
      if (existing === undefined) this.insertStmt.run({ ...values, now });
      else this.updateStmt.run({ ...values, now });
      const event = upsertEvent(values, existing !== undefined);
      this.event(null, event.type, now, event.agentId, event.data);
    }
    return schedules.map((s) => toSchedule(this.byId.get(s.id) as ScheduleRow));
  }

  list(): ScheduleRecord[] {
    return (this.all.all() as ScheduleRow[]).map(toSchedule);
  }

  get(id: string): ScheduleRecord | null {
    const row = this.byId.get(id) as ScheduleRow | undefined;
    return row === undefined ? null : toSchedule(row);
  }

  remove(id: string, now: number): void {
    if (this.deleteStmt.run(id).changes === 0) throw scheduleNotFound(id);
    this.event(null, "schedule:removed", now, null, { schedule: id });
  }

  pause(p: { id: string; paused: boolean; nextFireAt?: number | null | undefined; now: number }): ScheduleRecord {
    const cursor = resumeCursor(p);
    const row = this.byId.get(p.id) as ScheduleRow | undefined;
    if (row === undefined) throw scheduleNotFound(p.id);
    const problem = p.paused ? null : this.personaProblem(row);
    if (problem !== null) throw problem;
    this.pauseStmt.run({ id: p.id, pausedAt: p.paused ? (row.paused_at ?? p.now) : null, setNext: cursor.set ? 1 : 0, nextFireAt: cursor.nextFireAt, now: p.now });
    this.event(null, p.paused ? "schedule:paused" : "schedule:resumed", p.now, null, { schedule: p.id });
    return toSchedule(this.byId.get(p.id) as ScheduleRow);
  }

  due(now: number, limit = DUE_LIMIT_DEFAULT): ScheduleRecord[] {
    return (this.dueStmt.all({ now, limit }) as ScheduleRow[]).map(toSchedule);
  }

  nextFireAt(): number | null {
    return (this.nextStmt.get() as number | null) ?? null;
  }

  /** PERSONA_NOT_FOUND (storedSchedulePersonaError) when the schedule's persona is not in service, else null. */
  private personaProblem(row: ScheduleRow): RosterError | null {
    const { persona } = toSchedule(row).task;
    const missing = this.enqueuer.personaMissing(persona);
    return missing === null ? null : storedSchedulePersonaError(row.id, persona, missing);
  }

  fire(p: FireParams): FireResult {
    const { lastFireAt } = checkFire(p);
    const row = this.byId.get(p.scheduleId) as ScheduleRow | undefined;
    if (row === undefined) return { fired: false, taskIds: [] };
    const problem = this.personaProblem(row);
    if (problem !== null) {
      if (this.autoPauseStmt.run({ id: p.scheduleId, expected: p.expectedNextFireAt, now: p.now }).changes === 0) return { fired: false, taskIds: [] };
      this.event(null, "schedule:paused", p.now, p.by, autoPausedData(row.id, p.by, problem));
      return { fired: false, taskIds: [], paused: { code: "PERSONA_NOT_FOUND", message: problem.message } };
    }
    const taken = this.advanceStmt.run({ id: p.scheduleId, expected: p.expectedNextFireAt, nextFireAt: p.nextFireAt, lastFireAt, now: p.now }).changes === 1;
    if (!taken) return { fired: false, taskIds: [] };
    if (p.skipped.length > 0) this.event(null, "schedule:skipped", p.now, p.by, skippedData(p));
    if (p.fireAts.length === 0) return { fired: true, taskIds: [] };
    const written = this.enqueuer.write(fireInputs(row, p.fireAts, this.maxPayloadBytes), { parentId: null, createdBy: `schedule:${row.id}`, now: p.now });
    // An id that was not created here already had the key (enqueued by hand, or a fire replayed): no second event.
    const created = new Set(written.created);
    written.ids.forEach((taskId, i) => {
      if (created.has(taskId)) this.event(taskId, "schedule:fired", p.now, p.by, { schedule: row.id, fireAt: p.fireAts[i]!, cron: row.cron });
    });
    if (written.created.length > 0) {
      this.tx.emit("task:enqueued", { ids: written.created, personas: written.personas, ready: written.statuses.filter((s) => s === "pending").length });
    }
    return { fired: true, taskIds: written.ids };
  }
}
