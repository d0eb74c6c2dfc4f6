import type { Command } from "commander";
import { RosterError } from "../../errors.js";
import { TASK_STATES, type Store, type TaskState } from "../../store/index.js";
import { systemClock } from "../../clock.js";
import { preview, statusText, table, write } from "../format.js";
import { printJson } from "../output.js";
import { withPersonaFileHint } from "../persona-hint.js";
import { assertPersonaKnown as assertKnown } from "../../store/suggest.js";
import { addDbOption, addJsonOption, configFrom, parseInteger, withStore, type DbOptions, type JsonOptions } from "../options.js";

interface LsOptions extends DbOptions, JsonOptions {
  status?: string;
  persona?: string;
  limit?: string;
  all?: boolean;
}

export const LS_LIMIT_DEFAULT = 100;

/** `--status failed,blocked` → states, each checked. */
export function parseStatuses(raw: string): TaskState[] {
  return raw.split(",").map((part) => {
    const status = part.trim();
    if (!(TASK_STATES as readonly string[]).includes(status)) {
      throw new RosterError("VALIDATION", `--status: "${status}" is not one of ${TASK_STATES.join(", ")}`, { details: { field: "status" } });
    }
    return status as TaskState;
  });
}

/**
 * Refuses a --persona the database has never had, as `roster add --persona` does
 * (src/store/suggest.ts); a persona only defined in a file of the personas folder
 * gets add's hint on how to sync it.
 */
async function assertPersonaKnown(store: Store, persona: string, personasDir: string): Promise<void> {
  try {
    await assertKnown(store, persona, "--persona");
  } catch (error) {
    throw withPersonaFileHint(error, personasDir);
  }
}

/**
 * `roster ls`: tasks, newest first, filtered by status and persona; the newest
 * `--limit` of them, and a last line saying how many more there are. A pending
 * task whose run_at is ahead (a retry's backoff, `--delay`) reads `pending, due
 * in 4s`.
 */
export function register(program: Command): void {
  const command = program
    .command("ls")
    .description("list tasks, newest first")
    .option("--status <states>", `only these states, comma-separated (${TASK_STATES.join(", ")})`)
    .option("--persona <id>", "only this persona's tasks")
    .option("--limit <n>", `at most this many tasks, the newest; 0 for all (default ${LS_LIMIT_DEFAULT})`)
    .option("--all", "every task (the same as --limit 0)");
  addDbOption(command);
  addJsonOption(command);
  command.action(async (options: LsOptions) => {
    const status = options.status === undefined ? undefined : parseStatuses(options.status);
    if (options.all === true && options.limit !== undefined) {
      throw new RosterError("VALIDATION", "--all: cannot be combined with --limit", { details: { field: "all" } });
    }
    const limit = options.all === true ? 0 : options.limit === undefined ? LS_LIMIT_DEFAULT : parseInteger("--limit", options.limit, { min: 0 });
    const config = configFrom(options);
    const filter = { ...(status === undefined ? {} : { status }), ...(options.persona === undefined ? {} : { persona: options.persona }) };
    const { tasks, total } = await withStore(config, "existing", async (store) => {
      if (filter.persona !== undefined) await assertPersonaKnown(store, filter.persona, config.personasDir);
      const tasks = await store.tasks.list({ ...filter, limit, newestFirst: true });
      if (limit === 0 || tasks.length < limit) return { tasks, total: tasks.length };
      // As many as the limit: count the rest from the grouped counts (no scan of the tasks).
      const counts = await store.tasks.counts();
      let total = 0;
      for (const [persona, states] of Object.entries(counts)) {
        if (filter.persona !== undefined && persona !== filter.persona) continue;
        for (const [state, n] of Object.entries(states)) if (status === undefined || status.includes(state as TaskState)) total += n ?? 0;
      }
      return { tasks, total };
    });
    if (options.json) {
      printJson(tasks);
      return;
    }
    if (tasks.length === 0) {
      write("no tasks");
      return;
    }
    const now = systemClock.now();
    write(
      table(
        ["ID", "PERSONA", "STATUS", "ATTEMPTS", "DEPENDS ON", "TITLE", "RESULT / ERROR"],
        tasks.map((t) => [
          t.id,
          t.persona,
          statusText(t, now),
          `${t.attempts}/${t.maxAttempts}`,
          t.dependsOn.join(","),
          preview(t.title, 50),
          // A completed task keeps its last attempt's error; its result is what counts.
          t.error !== null && t.status !== "completed" ? `error: ${preview(t.error.message, 60)}` : preview(t.result),
        ]),
      ),
    );
    const more = total - tasks.length;
    if (more > 0) write(`… ${more} more (use --limit N or --all)`);
  });
}
