/**
 * Schedules (recurring tasks) as both stores keep them, without the database: a row's
 * mapping to a ScheduleRecord, the validation of an upsert, and the tasks a fire
 * enqueues. SQLite (src/store/sqlite/schedules.ts) and PostgreSQL
 * (src/store/postgres/schedules.ts) each hold only their SQL and decide here, so a
 * schedule behaves alike on both (docs/ARCHITECTURE.md, "PostgreSQL and beyond one machine").
 */
import { RosterError } from "../errors.js";
import { unknownPersona, type PersonaMissing } from "./enqueue-plan.js";
import { validateBatch, type ValidatedTask } from "./input.js";
import { MISSED_POLICIES, type FireParams, type MissedPolicy, type ScheduleRecord, type ScheduleTaskTemplate, type ScheduleUpsert, type TaskInput } from "./types.js";

export const SCHEDULE_ID_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,99}$/;
/** Most fire times one fire() call enqueues (catch-up-once needs one; a tick that ran late a few). */
export const FIRE_TIMES_MAX = 100;
/** Most due schedules one due() read returns when the caller names no limit. */
export const DUE_LIMIT_DEFAULT = 100;

/** The idempotency key of a schedule's fire: the same on every supervisor, so a fire enqueues once. */
export function fireKey(scheduleId: string, fireAt: number): string {
  return `schedule:${scheduleId}@${fireAt}`;
}

/** A `schedules` row as both engines read it. */
export interface ScheduleRow {
  id: string;
  cron: string;
  timezone: string | null;
  task: string;
  missed: MissedPolicy;
  source: string | null;
  paused_at: number | null;
  /** NULL: the expression never fires again (migrations/0013_schedules_no_next_fire.sql). */
  next_fire_at: number | null;
  last_fire_at: number | null;
  created_at: number;
  updated_at: number;
}

export function toSchedule(row: ScheduleRow): ScheduleRecord {
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

export function scheduleNotFound(id: string): RosterError {
  return new RosterError("VALIDATION", `schedule "${id}" does not exist`, { details: { field: "id", id } });
}

/** The values an upsert writes for one schedule: the defaults filled in, the template as JSON text. */
export interface ScheduleValues {
  id: string;
  cron: string;
  timezone: string | null;
  task: string;
  missed: MissedPolicy;
  source: string | null;
  nextFireAt: number;
}

export function scheduleValues(s: ScheduleUpsert): ScheduleValues {
  return {
    id: s.id,
    cron: s.cron,
    timezone: s.timezone ?? null,
    task: JSON.stringify(s.task),
    missed: s.missed ?? "skip",
    source: s.source ?? null,
    nextFireAt: s.nextFireAt,
  };
}

/** The audit event an upsert writes for one schedule (`schedule:added` or `schedule:updated`). */
export function upsertEvent(values: ScheduleValues, existed: boolean): { type: string; agentId: string | null; data: unknown } {
  return {
    type: existed ? "schedule:updated" : "schedule:added",
    agentId: values.source,
    data: { schedule: values.id, cron: values.cron, timezone: values.timezone, missed: values.missed },
  };
}

/**
 * Checks a batch of schedules whole before anything is written (docs/ARCHITECTURE.md
 * rule 11): ids well formed and given once, a known missed-fire policy, an epoch-ms
 * cursor, and a template that makes a valid task (its persona: schedulePersonaError, read by each engine).
 */
export function validateSchedules(schedules: ScheduleUpsert[], maxPayloadBytes: number): void {
  const seen = new Set<string>();
  schedules.forEach((s, index) => {
    const where = `schedules[${index}]`;
    if (typeof s.id !== "string" || !SCHEDULE_ID_PATTERN.test(s.id)) {
      throw new RosterError("VALIDATION", `${where}.id: must be lowercase letters, digits, _ . or -, starting with a letter or digit, got ${JSON.stringify(s.id)}`, { details: { index, field: "id" } });
    }
    if (seen.has(s.id)) throw new RosterError("VALIDATION", `${where}.id: "${s.id}" is given twice`, { details: { index, field: "id" } });
    seen.add(s.id);
    if (!(MISSED_POLICIES as readonly string[]).includes(s.missed ?? "skip")) {
      throw new RosterError("VALIDATION", `${where}.missed: must be one of ${MISSED_POLICIES.join(", ")}`, { details: { index, field: "missed" } });
    }
    if (!isEpochMs(s.nextFireAt)) throw new RosterError("VALIDATION", `${where}.nextFireAt: must be epoch ms`, { details: { index, field: "nextFireAt" } });
    template(s.task, `${where}.task`, maxPayloadBytes);
  });
}

/**
 * A schedule of an upsert whose task names a persona not in service, at `schedules[i].task.persona`,
 * in the words an enqueue uses (unknownPersona): `roster add --persona` and `schedule add` refuse alike.
 */
export function schedulePersonaError(index: number, persona: string, missing: PersonaMissing): RosterError {
  return unknownPersona(`schedules[${index}].task.persona`, persona, missing.retired, missing.known, { index });
}

/**
 * A stored schedule whose task names a persona no longer in service (retired, or gone from the
 * database): why a fire paused it, or why a resume is refused. `schedule "x": task.persona: retired persona "p" (known: …)`.
 */
export function storedSchedulePersonaError(id: string, persona: string, missing: PersonaMissing): RosterError {
  return unknownPersona(`schedule "${id}": task.persona`, persona, missing.retired, missing.known, { schedule: id });
}

/**
 * A schedule's state as `schedule ls` and the dashboard say it: `active` or `paused`, with why
 * beside it when there is a reason to act: its persona retired or unknown (a supervisor pauses
 * such a schedule at its next fire), or no next fire left. `persona` is the schedule's persona
 * record, or undefined when the database has none.
 */
export function scheduleState(s: ScheduleRecord, persona: { retiredAt: number | null } | undefined): string {
  const base = s.pausedAt === null ? "active" : "paused";
  const problem =
    persona === undefined
      ? `persona "${s.task.persona}" unknown`
      : persona.retiredAt !== null
        ? `persona "${s.task.persona}" retired`
        : s.pausedAt === null && s.nextFireAt === null
          ? "no next fire"
          : null;
  return problem === null ? base : `${base} (${problem})`;
}

/** The `schedule:paused` event's data when a fire paused a schedule for its persona (a person's pause has no reason). */
export function autoPausedData(id: string, by: string, error: RosterError): { schedule: string; by: string; code: string; reason: string } {
  return { schedule: id, by, code: error.code, reason: error.message };
}

/** The task input a template makes, validated (shape and payload); its persona is the engine's to read (schedulePersonaError). */
function template(task: ScheduleTaskTemplate, field: string, maxPayloadBytes: number): TaskInput {
  if (task === null || typeof task !== "object" || Array.isArray(task)) {
    throw new RosterError("VALIDATION", `${field}: must be an object with persona and title`, { details: { field } });
  }
  // Each fire's task carries payload.schedule = { id, fireAt } beside the template's own keys, so the
  // payload must be an object and must leave that key free (docs/humans-and-schedules.md).
  if (task.payload !== undefined) {
    if (!isObject(task.payload)) {
      const got = task.payload === null ? "null" : Array.isArray(task.payload) ? "an array" : `a ${typeof task.payload}`;
      throw new RosterError("VALIDATION", `${field}.payload: must be an object (each fire adds payload.schedule = { id, fireAt } to it), got ${got}`, {
        details: { field: `${field}.payload` },
      });
    }
    if (Object.hasOwn(task.payload, "schedule")) {
      throw new RosterError("VALIDATION", `${field}.payload.schedule: is reserved (each fire sets it to { id, fireAt }); name your key otherwise`, {
        details: { field: `${field}.payload.schedule` },
      });
    }
  }
  const input: TaskInput = { ...task };
  try {
    validateBatch([input], maxPayloadBytes);
  } catch (error) {
    if (!(error instanceof RosterError)) throw error;
    throw new RosterError(error.code, `${field}: ${error.message.replace(/^tasks\[0\]\.?/, "")}`, { details: { field } });
  }
  return input;
}

/** An integer time a Date can hold (epoch ms within ±8.64e15): what a cursor may store. */
export function isEpochMs(value: unknown): value is number {
  return Number.isSafeInteger(value) && Math.abs(value as number) <= MAX_DATE_MS;
}
const MAX_DATE_MS = 8_640_000_000_000_000;

/**
 * The cursor a resume writes: `nextFireAt` when given (null: none left), or the stored one
 * (undefined: keep). A pause keeps the stored cursor.
 */
export function resumeCursor(p: { paused: boolean; nextFireAt?: number | null | undefined }): { set: boolean; nextFireAt: number | null } {
  const set = !p.paused && p.nextFireAt !== undefined;
  if (set && p.nextFireAt !== null && !isEpochMs(p.nextFireAt)) {
    throw new RosterError("VALIDATION", "nextFireAt: must be epoch ms or null (no next fire)", { details: { field: "nextFireAt" } });
  }
  return { set, nextFireAt: set ? (p.nextFireAt ?? null) : null };
}

/** Refuses a fire of more than FIRE_TIMES_MAX times or a cursor no Date holds; answers the cursor's new last_fire_at (null: none fired). */
export function checkFire(p: FireParams): { lastFireAt: number | null } {
  if (p.fireAts.length > FIRE_TIMES_MAX) {
    throw new RosterError("VALIDATION", `fireAts: at most ${FIRE_TIMES_MAX} fire times per call`, { details: { field: "fireAts" } });
  }
  if (p.nextFireAt !== null && !isEpochMs(p.nextFireAt)) {
    throw new RosterError("VALIDATION", "nextFireAt: must be epoch ms or null (no next fire)", { details: { field: "nextFireAt" } });
  }
  return { lastFireAt: p.fireAts.length === 0 ? null : Math.max(...p.fireAts) };
}

/** The `schedule:skipped` event's data for missed fire times a taken fire passed over. */
export function skippedData(p: FireParams): { schedule: string; missed: number; first: number; last: number } {
  return { schedule: p.scheduleId, missed: p.skipped.length, first: Math.min(...p.skipped), last: Math.max(...p.skipped) };
}

/**
 * The tasks a taken fire enqueues, one per fire time, validated: the template with the fire in its payload and fireKey() as
 * idempotency key. A payload that is not an object (stored before upserts refused one) goes under payload.value.
 */
export function fireInputs(row: ScheduleRow, fireAts: readonly number[], maxPayloadBytes: number): ValidatedTask[] {
  const template = JSON.parse(row.task) as ScheduleTaskTemplate;
  const inputs: TaskInput[] = fireAts.map((fireAt) => ({
    ...template,
    payload: { ...(isObject(template.payload) ? template.payload : template.payload === undefined ? {} : { value: template.payload }), schedule: { id: row.id, fireAt } },
    idempotencyKey: fireKey(row.id, fireAt),
  }));
  return validateBatch(inputs, maxPayloadBytes);
}

function isObject(value: unknown): value is Record<string, never> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
