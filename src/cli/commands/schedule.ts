import { resolve } from "node:path";
import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { RosterError, coerceError } from "../../errors.js";
import { MISSED_POLICIES, type PersonaRecord, type ScheduleRecord, type ScheduleUpsert } from "../../store/index.js";
import { nextFireAfter, parseCron } from "../../supervisor/scheduler.js";
import { schedulesOfFile, toUpsert, type ScheduleInput } from "../schedule-file.js";
import { isoTime, table, write } from "../format.js";
import { printJson } from "../output.js";
import { withPersonaFileHint } from "../persona-hint.js";
import { scheduleState } from "../../store/schedules.js";
import { parseYamlText, readInputFile } from "../plan-file.js";
import { addDbOption, addJsonOption, configFrom, withStore, type DbOptions, type JsonOptions } from "../options.js";

/**
 * Store errors about the one schedule of `schedule add`, said in the command line's words:
 * "schedules[0].id: …" becomes "<id>: …", "schedules[0].task.persona: …" becomes
 * "--persona: …". Presentation only (code and details kept), as `roster add` does for its flags.
 */
function renameForCommandLine(error: unknown): unknown {
  if (!(error instanceof RosterError)) return error;
  const message = error.message
    .replace(/^schedules\[0\]\.id\b/, "<id>")
    .replace(/^schedules\[0\]\.(?:task\.)?(\w+)/, (_all, field: string) => `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  return message === error.message ? error : new RosterError(error.code, message, { cause: error, details: error.details, retryable: error.retryable });
}

/** A store error about a schedules file's schedules, with the file's name first. */
function inFile(file: string, error: unknown): unknown {
  if (!(error instanceof RosterError)) return error;
  return new RosterError(error.code, `${file}: ${error.message}`, { cause: error, details: error.details, retryable: error.retryable });
}

/** What `add` and `resume` say of an active schedule's next fire: its time, or that there is none left. */
function nextFireText(s: ScheduleRecord): string {
  return s.nextFireAt === null ? `no next fire ("${s.cron}" never fires again: change its cron with \`roster schedule add\`, or remove it)` : `next fire ${isoTime(s.nextFireAt)}`;
}

/**
 * The table of `schedule ls`. A paused schedule shows no next fire (resuming computes it);
 * the state says when its persona is retired or gone (a supervisor pauses such a schedule at
 * its next fire, docs/humans-and-schedules.md), so the reason shows beside it, and when its
 * expression never fires again ("no next fire").
 */
function printSchedules(schedules: ScheduleRecord[], personas: ReadonlyMap<string, PersonaRecord>): void {
  if (schedules.length === 0) {
    write("no schedules");
    return;
  }
  const state = (s: ScheduleRecord): string => scheduleState(s, personas.get(s.task.persona));
  write(
    table(
      ["id", "cron", "zone", "missed", "persona", "title", "next", "state"],
      schedules.map((s) => [s.id, s.cron, s.timezone ?? "local", s.missed, s.task.persona, s.task.title, s.pausedAt === null && s.nextFireAt !== null ? isoTime(s.nextFireAt) : "-", state(s)]),
    ),
  );
}

/** `roster schedule add|ls|rm|pause|resume|sync`: recurring tasks from cron expressions, fired by running supervisors. */
export function register(program: Command): void {
  const schedule = program.command("schedule").description("recurring tasks from cron expressions (fired by `roster start`)");

  const add = schedule
    .command("add")
    .description("add (or replace) a schedule")
    .argument("<id>", "schedule id (lowercase letters, digits, _ . -)")
    .requiredOption("--cron <expr>", 'cron expression: 5 fields, or 6 with seconds first ("*/10 * * * * *")')
    .requiredOption("--persona <id>", "persona of the task each fire enqueues")
    .requiredOption("--title <text>", "title of the task each fire enqueues")
    .option("--description <text>", "its description")
    .option("--payload <json>", "its payload, a JSON object (each fire adds the key schedule: { id, fireAt })")
    .option("--tz <zone>", "IANA time zone of the expression (default: the supervisor's local zone)")
    .option("--missed <policy>", `what a supervisor that was down does about missed fires: ${MISSED_POLICIES.join(" | ")}`, "skip");
  addDbOption(add);
  addJsonOption(add);
  add.action(
    async (
      id: string,
      options: DbOptions & JsonOptions & { cron: string; persona: string; title: string; description?: string; payload?: string; tz?: string; missed: string },
    ) => {
      let payload: unknown;
      if (options.payload !== undefined) {
        try {
          payload = JSON.parse(options.payload);
        } catch (error) {
          throw new RosterError("VALIDATION", `--payload: not JSON (${coerceError(error).message})`, { details: { field: "payload" } });
        }
      }
      if (!(MISSED_POLICIES as readonly string[]).includes(options.missed)) {
        throw new RosterError("VALIDATION", `--missed: must be one of ${MISSED_POLICIES.join(", ")}, got "${options.missed}"`, { details: { field: "missed" } });
      }
      const now = systemClock.now();
      const input: ScheduleInput = {
        id,
        cron: options.cron,
        ...(options.tz === undefined ? {} : { timezone: options.tz }),
        missed: options.missed as ScheduleInput["missed"],
        task: {
          persona: options.persona,
          title: options.title,
          ...(options.description === undefined ? {} : { description: options.description }),
          ...(payload === undefined ? {} : { payload }),
        },
      };
      const upsert = toUpsert(input, "cli", now, { cron: "--cron", timezone: "--tz" });
      const config = configFrom(options);
      const [saved] = await withStore(config, "existing", async (store) => {
        try {
          return await store.schedules.upsert({ schedules: [upsert], now });
        } catch (error) {
          throw withPersonaFileHint(renameForCommandLine(error), config.personasDir);
        }
      });
      if (options.json) printJson(saved);
      // A replaced schedule keeps its pause (docs/humans-and-schedules.md): say so, not a fire that will not come.
      else if (saved!.pausedAt !== null) write(`schedule ${id}: paused (it stays paused; \`roster schedule resume ${id}\` fires it again)`);
      else write(`schedule ${id}: ${nextFireText(saved!)}`);
    },
  );

  const ls = schedule.command("ls").description("list schedules");
  addDbOption(ls);
  addJsonOption(ls);
  ls.action(async (options: DbOptions & JsonOptions) => {
    const [schedules, personas] = await withStore(configFrom(options), "existing", async (store) =>
      Promise.all([store.schedules.list(), options.json ? [] : store.personas.list({ includeRetired: true })]),
    );
    if (options.json) printJson(schedules);
    else printSchedules(schedules, new Map(personas.map((p) => [p.id, p])));
  });

  const rm = schedule.command("rm").description("remove a schedule (tasks it enqueued stay)").argument("<id>", "schedule id");
  addDbOption(rm);
  rm.action(async (id: string, options: DbOptions) => {
    await withStore(configFrom(options), "existing", (store) => store.schedules.remove({ id, now: systemClock.now() }));
    write(`schedule ${id}: removed`);
  });

  for (const [name, paused] of [
    ["pause", true],
    ["resume", false],
  ] as const) {
    const command = schedule
      .command(name)
      .description(paused ? "stop firing a schedule" : "fire a paused schedule again (fires missed while paused are not run)")
      .argument("<id>", "schedule id");
    addDbOption(command);
    addJsonOption(command);
    command.action(async (id: string, options: DbOptions & JsonOptions) => {
      const now = systemClock.now();
      const saved = await withStore(configFrom(options), "existing", async (store) => {
        if (paused) return store.schedules.pause({ id, paused: true, now });
        const current = await store.schedules.get({ id });
        if (current === null) throw new RosterError("VALIDATION", `schedule "${id}" does not exist`, { details: { field: "id" } });
        const next = nextFireAfter(parseCron(current.cron, current.timezone), now);
        return store.schedules.pause({ id, paused: false, nextFireAt: next, now });
      });
      if (options.json) printJson(saved);
      else write(`schedule ${id}: ${paused ? "paused" : `resumed; ${nextFireText(saved)}`}`);
    });
  }

  const sync = schedule
    .command("sync")
    .description("add or replace the schedules of a YAML file under version control (and remove those it dropped)")
    .argument("<file>", "schedules file, e.g. schedules.yaml");
  addDbOption(sync);
  addJsonOption(sync);
  sync.action(async (file: string, options: DbOptions & JsonOptions) => {
    const path = resolve(file);
    const parsed = parseYamlText(file, readInputFile(file, "schedules file"));
    const now = systemClock.now();
    const upserts = schedulesOfFile(parsed, file, path, now);
    const config = configFrom(options);
    const saved = await withStore(config, "existing", async (store) => {
      let out: ScheduleRecord[] = [];
      try {
        if (upserts.length > 0) out = await store.schedules.upsert({ schedules: upserts, now });
      } catch (error) {
        throw inFile(file, withPersonaFileHint(error, config.personasDir));
      }
      const keep = new Set(upserts.map((u) => u.id));
      const removed: string[] = [];
      for (const s of await store.schedules.list()) {
        if (s.source === path && !keep.has(s.id)) {
          await store.schedules.remove({ id: s.id, now });
          removed.push(s.id);
        }
      }
      return { schedules: out, removed };
    });
    if (options.json) printJson(saved);
    else write(`${file}: ${saved.schedules.length} schedule(s) synced${saved.removed.length > 0 ? `; removed: ${saved.removed.join(", ")}` : ""}`);
  });
}
