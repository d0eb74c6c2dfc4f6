/**
 * Schedules as `roster schedule add` and `sync` read them (docs/humans-and-schedules.md): the
 * shape of a schedule and of a schedules file, and the checks made before the database is
 * opened. A file's problems are all reported at once (docs/ARCHITECTURE.md rule 11: bad input is
 * refused whole, naming what and where): its shape, each schedule's zone and expression; the
 * store then checks ids, payloads and personas.
 */
import { z } from "zod";
import { RosterError } from "../errors.js";
import { MISSED_POLICIES, type ScheduleUpsert } from "../store/index.js";
import { checkCronFields, checkTimezone, nextFireAfter, parseCron, type CronFields } from "../supervisor/scheduler.js";

const templateSchema = z
  .object({
    persona: z.string().min(1),
    title: z.string().min(1),
    description: z.string().optional(),
    payload: z.unknown().optional(),
    priority: z.number().int().optional(),
    maxAttempts: z.number().int().min(1).optional(),
  })
  .strict();

const scheduleSchema = z
  .object({
    id: z.string().min(1),
    cron: z.string().min(1),
    timezone: z.string().min(1).optional(),
    missed: z.enum(MISSED_POLICIES).optional(),
    task: templateSchema,
  })
  .strict();

/** A schedules file's top level: `schedules:` a list (each checked on its own by scheduleSchema). */
const fileSchema = z.object({ schedules: z.array(z.unknown()) }).strict();

export type ScheduleInput = z.infer<typeof scheduleSchema>;

/** The first fire of `cron` in `timezone` after now; VALIDATION naming `fields` when it is not 5 or 6 fields, croner refuses it, or it never fires. */
function firstFire(cron: string, timezone: string | undefined, now: number, fields: Required<CronFields>): number {
  checkCronFields(cron, fields.cron);
  const next = nextFireAfter(parseCron(cron, timezone, fields), now);
  if (next === null) throw new RosterError("VALIDATION", `${fields.cron}: "${cron}" never fires after now`, { details: { field: fields.cron } });
  return next;
}

/** A schedule as stored: its first fire is the cron's first time after now. `fields` names the expression and zone in errors. */
export function toUpsert(input: ScheduleInput, source: string, now: number, fields: Required<CronFields>): ScheduleUpsert {
  return {
    id: input.id,
    cron: input.cron,
    timezone: input.timezone ?? null,
    missed: input.missed ?? "skip",
    task: input.task as ScheduleUpsert["task"],
    source,
    nextFireAt: firstFire(input.cron, input.timezone, now, fields),
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * A parsed schedules file's schedules, or VALIDATION `FILE: problem; problem; …` naming every
 * problem found: the top level's shape, each schedule's unknown or missing keys, its zone and its
 * expression (the zone and the expression apart, so neither hides the other, nor a key the other).
 */
export function schedulesOfFile(parsed: unknown, file: string, source: string, now: number): ScheduleUpsert[] {
  const problems: string[] = [];
  const issue = (path: PropertyKey[], message: string) => problems.push(`${path.map(String).join(".") || "(top)"}: ${message}`);
  const top = fileSchema.safeParse(parsed);
  if (!top.success) for (const i of top.error.issues) issue(i.path, i.message);
  const items = isRecord(parsed) && Array.isArray(parsed.schedules) ? (parsed.schedules as unknown[]) : [];
  const upserts: ScheduleUpsert[] = [];
  items.forEach((raw, index) => {
    const one = scheduleSchema.safeParse(raw);
    if (!one.success) for (const i of one.error.issues) issue(["schedules", index, ...i.path], i.message);
    const fields = { cron: `schedules[${index}].cron`, timezone: `schedules[${index}].timezone` };
    const r = isRecord(raw) ? raw : {};
    const timezone = typeof r.timezone === "string" && r.timezone !== "" ? r.timezone : undefined;
    const zoneOk = timezone === undefined || collect(problems, () => checkTimezone(timezone, fields.timezone));
    if (typeof r.cron === "string" && r.cron !== "") {
      const cron = r.cron;
      collect(problems, () => (one.success && zoneOk ? upserts.push(toUpsert(one.data, source, now, fields)) : firstFire(cron, zoneOk ? timezone : undefined, now, fields)));
    }
  });
  if (problems.length > 0) throw new RosterError("VALIDATION", `${file}: ${problems.join("; ")}`, { details: { field: "file" } });
  return upserts;
}

/** Runs `check`; a VALIDATION it throws is added to `problems` (false), anything else is thrown on. */
function collect(problems: string[], check: () => unknown): boolean {
  try {
    check();
    return true;
  } catch (error) {
    if (!(error instanceof RosterError) || error.code !== "VALIDATION") throw error;
    problems.push(error.message);
    return false;
  }
}
