import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { RosterError, coerceError } from "../../errors.js";
import type { Json, TaskInput } from "../../store/index.js";
import { write } from "../format.js";
import { printJson } from "../output.js";
import { withPersonaFileHint } from "../persona-hint.js";
import { readPlanFile } from "../plan-file.js";
import { addDbOption, addJsonOption, configFrom, parseIdList, parseInteger, withStore, type DbOptions, type JsonOptions } from "../options.js";

interface AddOptions extends DbOptions, JsonOptions {
  persona?: string;
  title?: string;
  description?: string;
  dependsOn?: string;
  priority?: string;
  payload?: string;
  maxAttempts?: string;
  delay?: string;
  file?: string;
}

const SINGLE_ONLY = ["persona", "title", "description", "dependsOn", "priority", "payload", "maxAttempts", "delay"] as const;

/** Builds the one task of `roster add --persona P --title T …`; every flag checked before anything is written. */
function taskFromFlags(options: AddOptions): TaskInput {
  if (options.persona === undefined) throw new RosterError("VALIDATION", "--persona: required (or give --file PLAN)", { details: { field: "persona" } });
  if (options.title === undefined) throw new RosterError("VALIDATION", "--title: required (or give --file PLAN)", { details: { field: "title" } });
  const task: TaskInput = { persona: options.persona, title: options.title };
  if (options.description !== undefined) task.description = options.description;
  if (options.dependsOn !== undefined) task.dependsOn = parseIdList("--depends-on", options.dependsOn);
  if (options.priority !== undefined) task.priority = parseInteger("--priority", options.priority);
  if (options.maxAttempts !== undefined) task.maxAttempts = parseInteger("--max-attempts", options.maxAttempts, { min: 1 });
  if (options.delay !== undefined) task.delayMs = parseInteger("--delay", options.delay, { min: 0 });
  if (options.payload !== undefined) {
    try {
      task.payload = JSON.parse(options.payload) as Json;
    } catch (error) {
      throw new RosterError("VALIDATION", `--payload: not valid JSON (${coerceError(error).message})`, { cause: error, details: { field: "payload" } });
    }
  }
  return task;
}

/**
 * The flag that sets each field of the task (taskFromFlags), so a store error
 * about a field names the flag the user typed: the field is delayMs, the flag
 * --delay, so deriving one from the other named a --delay-ms that does not exist.
 */
const TASK_FIELD_FLAGS: Readonly<Record<string, string>> = {
  persona: "--persona",
  title: "--title",
  description: "--description",
  dependsOn: "--depends-on",
  priority: "--priority",
  payload: "--payload",
  maxAttempts: "--max-attempts",
  delayMs: "--delay",
};

/**
 * Store errors about the one task of the batch, said in the flags' words:
 * "tasks[0].persona: …" becomes "--persona: …". Presentation only (the code and
 * details are kept); a message in another form, or about a field no flag sets,
 * passes through unchanged.
 */
function renameForFlags(error: unknown): unknown {
  if (!(error instanceof RosterError)) return error;
  // Each of the problems listed ("a: …; b: …").
  const message = error.message.replace(/(^|; )tasks\[0\]\.(\w+)/g, (all, before: string, field: string) => (TASK_FIELD_FLAGS[field] === undefined ? all : `${before}${TASK_FIELD_FLAGS[field]}`));
  return message === error.message ? error : new RosterError(error.code, message, { cause: error, details: error.details, retryable: error.retryable });
}

/**
 * `roster add`: one task from flags, or a batch from a plan file with local refs,
 * enqueued atomically (all or nothing). Prints the new id(s).
 */
export function register(program: Command): void {
  const command = program
    .command("add")
    .description("enqueue a task (prints its id), or a batch of tasks from a plan file, atomically")
    .option("--persona <id>", "persona that runs the task")
    .option("--title <text>", "task title")
    .option("--description <text>", "task description")
    .option("--depends-on <ids>", "ids of existing tasks this one waits for, comma-separated (1,2)")
    .option("--priority <n>", "higher runs first (-1000..1000, default 0)")
    .option("--payload <json>", "JSON value handed to the adapter")
    .option("--max-attempts <n>", "attempts before the task fails (default: the persona's retry.maxAttempts)")
    .option("--delay <ms>", "do not start before this many ms from now")
    .option("--file <plan>", "plan file (.json, .yaml, .yml): { tasks: [{ ref, persona, title, dependsOn: [ref or id], … }] }");
  addDbOption(command);
  addJsonOption(command);
  command.action(async (options: AddOptions) => {
    const config = configFrom(options);
    if (options.file !== undefined) {
      const clash = SINGLE_ONLY.find((name) => options[name] !== undefined);
      if (clash !== undefined) {
        const flag = `--${clash.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
        throw new RosterError("VALIDATION", `--file: cannot be combined with ${flag}; put the task's fields in the plan file`, { details: { field: "file" } });
      }
      const file = options.file;
      const tasks = readPlanFile(file);
      const result = await withStore(config, "existing", async (store) => {
        try {
          return await store.tasks.enqueue({ tasks, createdBy: "cli", now: systemClock.now() });
        } catch (error) {
          const hinted = withPersonaFileHint(error, config.personasDir);
          if (!(hinted instanceof RosterError)) throw hinted;
          throw new RosterError(hinted.code, `${file}: ${hinted.message}`, { cause: hinted, details: hinted.details, retryable: hinted.retryable });
        }
      });
      if (options.json) {
        printJson({ ids: result.refs, all: result.ids });
        return;
      }
      const refs = new Map(Object.entries(result.refs).map(([ref, id]) => [id, ref]));
      for (const id of result.ids) write(refs.has(id) ? `${id}\t${refs.get(id)}` : String(id));
      return;
    }
    const task = taskFromFlags(options);
    const result = await withStore(config, "existing", async (store) => {
      try {
        return await store.tasks.enqueue({ tasks: [task], createdBy: "cli", now: systemClock.now() });
      } catch (error) {
        throw withPersonaFileHint(renameForFlags(error), config.personasDir);
      }
    });
    const id = result.ids[0]!;
    if (options.json) printJson({ id });
    else write(String(id));
  });
}
