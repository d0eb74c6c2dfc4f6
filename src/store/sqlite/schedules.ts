import { RosterError } from "../../errors.js";
import { validateBatch } from "../input.js";
import {
  MISSED_POLICIES,
  type FireParams,
  type MissedPolicy,
  type ScheduleRecord,
  type ScheduleTaskTemplate,
  type ScheduleUpsert,
  type TaskInput,
} from "../types.js";
import type { Db, TransactionRunner } from "./database.js";
import type { Enqueuer } from "./enqueue.js";

export const SCHEDULE_ID_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,99}$/;
/** Most fire times one fire() call enqueues (catch-up-once needs one; a tick that ran late a few). */
export const FIRE_TIMES_MAX = 100;
const DUE_LIMIT_DEFAULT = 100;

/** The idempotency key of a schedule's fire: the same on every supervisor, so a fire enqueues once. */
export function fireKey(scheduleId: string, fireAt: number): string {
  return `schedule:${scheduleId}@${fireAt}`;
}

interface ScheduleRow {
  id: string;
  cron: string;
  timezone: string | null;
  task: string;
  missed: MissedPolicy;
  source: string | null;
  paused_at: number | null;
  next_fire_at: number;
  last_fire_at: number | null;
  created_at: number;
  updated_at: number;
}

function toSchedule(row: ScheduleRow): ScheduleRecord {
  return {
    id: row.id,
    cron: row.cron,
    timezone: row.timezone,
    task: JSON.parse(row.task) as ScheduleTaskTemplate,
    missed: row.missed,
    source: row.source,
    pausedAt: row.paused_at,
    nextFireAt: row.next_fire_at,
    lastFireAt: row.last_fire_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function notFound(id: string): RosterError {
  return new RosterError("VALIDATION", `schedule "${id}" does not exist`, { details: { field: "id", id } });
}

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
    this.pauseStmt = db.prepare(`
      UPDATE schedules SET paused_at = @pausedAt, next_fire_at = coalesce(@nextFireAt, next_fire_at), updated_at = @now WHERE id = @id`);
    this.advanceStmt = db.prepare(`
      UPDATE schedules SET next_fire_at = @nextFireAt, last_fire_at = coalesce(@lastFireAt, last_fire_at), updated_at = @now
      WHERE id = @id AND next_fire_at = @expected AND paused_at IS NULL`);
    this.nextStmt = db.prepare("SELECT min(next_fire_at) FROM schedules WHERE paused_at IS NULL").pluck();
    this.insertEvent = db.prepare(
      "INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES (@taskId, @type, @now, @agentId, NULL, @data)",
    );
  }

  private event(taskId: number | null, type: string, now: number, agentId: string | null, data: unknown): void {
    this.insertEvent.run({ taskId, type, now, agentId, data: JSON.stringify(data) });
  }

  upsert(schedules: ScheduleUpsert[], now: number): ScheduleRecord[] {
    const seen = new Set<string>();
    schedules.forEach((s, index) => {
      const where = `schedules[${index}]`;
      if (typeof s.id !== "string" || !SCHEDULE_ID_PATTERN.test(s.id)) {
        throw new RosterError("VALIDATION", `${where}.id: must be lowercase letters, digits, _ . or -, starting with a letter or digit`, { details: { index, field: "id" } });
      }
      if (seen.has(s.id)) throw new RosterError("VALIDATION", `${where}.id: "${s.id}" is given twice`, { details: { index, field: "id" } });
      seen.add(s.id);
      if (!(MISSED_POLICIES as readonly string[]).includes(s.missed ?? "skip")) {
        throw new RosterError("VALIDATION", `${where}.missed: must be one of ${MISSED_POLICIES.join(", ")}`, { details: { index, field: "missed" } });
      }
      if (!Number.isSafeInteger(s.nextFireAt)) throw new RosterError("VALIDATION", `${where}.nextFireAt: must be epoch ms`, { details: { index, field: "nextFireAt" } });
      // The template must make a valid task, and its persona must exist: checked by the enqueuer's own rules.
      this.template(s.task, `${where}.task`);
    });
    for (const s of schedules) {
      const row = {
        id: s.id,
        cron: s.cron,
        timezone: s.timezone ?? null,
        task: JSON.stringify(s.task),
        missed: s.missed ?? "skip",
        source: s.source ?? null,
        nextFireAt: s.nextFireAt,
        now,
      };
      const existing = this.byId.get(s.id) as ScheduleRow | undefined;
      if (existing === undefined) this.insertStmt.run(row);
      else this.updateStmt.run(row);
      this.event(null, existing === undefined ? "schedule:added" : "schedule:updated", now, s.source ?? null, { schedule: s.id, cron: s.cron, timezone: row.timezone, missed: row.missed });
    }
    return schedules.map((s) => toSchedule(this.byId.get(s.id) as ScheduleRow));
  }

  /** The task input a template makes, validated (shape and payload); the persona is checked when it is enqueued. */
  private template(task: ScheduleTaskTemplate, field: string): TaskInput {
    if (task === null || typeof task !== "object" || Array.isArray(task)) {
      throw new RosterError("VALIDATION", `${field}: must be an object with persona and title`, { details: { field } });
    }
    const input: TaskInput = { ...task };
    try {
      validateBatch([input], this.maxPayloadBytes);
    } catch (error) {
      if (!(error instanceof RosterError)) throw error;
      throw new RosterError(error.code, `${field}: ${error.message.replace(/^tasks\[0\]\.?/, "")}`, { details: { field } });
    }
    return input;
  }

  list(): ScheduleRecord[] {
    return (this.all.all() as ScheduleRow[]).map(toSchedule);
  }

  get(id: string): ScheduleRecord | null {
    const row = this.byId.get(id) as ScheduleRow | undefined;
    return row === undefined ? null : toSchedule(row);
  }

  remove(id: string, now: number): void {
    if (this.deleteStmt.run(id).changes === 0) throw notFound(id);
    this.event(null, "schedule:removed", now, null, { schedule: id });
  }

  pause(p: { id: string; paused: boolean; nextFireAt?: number | undefined; now: number }): ScheduleRecord {
    const row = this.byId.get(p.id) as ScheduleRow | undefined;
    if (row === undefined) throw notFound(p.id);
    this.pauseStmt.run({ id: p.id, pausedAt: p.paused ? (row.paused_at ?? p.now) : null, nextFireAt: p.paused ? null : (p.nextFireAt ?? null), now: p.now });
    this.event(null, p.paused ? "schedule:paused" : "schedule:resumed", p.now, null, { schedule: p.id });
    return toSchedule(this.byId.get(p.id) as ScheduleRow);
  }

  due(now: number, limit = DUE_LIMIT_DEFAULT): ScheduleRecord[] {
    return (this.dueStmt.all({ now, limit }) as ScheduleRow[]).map(toSchedule);
  }

  nextFireAt(): number | null {
    return (this.nextStmt.get() as number | null) ?? null;
  }

  fire(p: FireParams): { fired: boolean; taskIds: number[] } {
    if (p.fireAts.length > FIRE_TIMES_MAX) {
      throw new RosterError("VALIDATION", `fireAts: at most ${FIRE_TIMES_MAX} fire times per call`, { details: { field: "fireAts" } });
    }
    const row = this.byId.get(p.scheduleId) as ScheduleRow | undefined;
    if (row === undefined) return { fired: false, taskIds: [] };
    const lastFireAt = p.fireAts.length === 0 ? null : Math.max(...p.fireAts);
    const taken = this.advanceStmt.run({ id: p.scheduleId, expected: p.expectedNextFireAt, nextFireAt: p.nextFireAt, lastFireAt, now: p.now }).changes === 1;
    if (!taken) return { fired: false, taskIds: [] };
    if (p.skipped.length > 0) {
      this.event(null, "schedule:skipped", p.now, p.by, { schedule: p.scheduleId, missed: p.skipped.length, first: Math.min(...p.skipped), last: Math.max(...p.skipped) });
    }
    if (p.fireAts.length === 0) return { fired: true, taskIds: [] };
    const template = JSON.parse(row.task) as ScheduleTaskTemplate;
    const inputs: TaskInput[] = p.fireAts.map((fireAt) => ({
      ...template,
      payload: { ...(isObject(template.payload) ? template.payload : template.payload === undefined ? {} : { value: template.payload }), schedule: { id: row.id, fireAt } },
      idempotencyKey: fireKey(row.id, fireAt),
    }));
    const written = this.enqueuer.write(validateBatch(inputs, this.maxPayloadBytes), { parentId: null, createdBy: `schedule:${row.id}`, now: p.now });
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

function isObject(value: unknown): value is Record<string, never> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
