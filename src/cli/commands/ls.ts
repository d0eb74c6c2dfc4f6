import type { Command } from "commander";
import { RosterError } from "../../errors.js";
import { TASK_STATES, type TaskState } from "../../store/index.js";
import { preview, table, write } from "../format.js";
import { printJson } from "../output.js";
import { addDbOption, addJsonOption, configFrom, parseInteger, withStore, type DbOptions, type JsonOptions } from "../options.js";

interface LsOptions extends DbOptions, JsonOptions {
  status?: string;
  persona?: string;
  limit?: string;
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

/** `roster ls`: tasks, oldest first, filtered by status and persona. */
export function register(program: Command): void {
  const command = program
    .command("ls")
    .description("list tasks, oldest first")
    .option("--status <states>", `only these states, comma-separated (${TASK_STATES.join(", ")})`)
    .option("--persona <id>", "only this persona's tasks")
    .option("--limit <n>", `at most this many tasks; 0 for all (default ${LS_LIMIT_DEFAULT})`);
  addDbOption(command);
  addJsonOption(command);
  command.action(async (options: LsOptions) => {
    const status = options.status === undefined ? undefined : parseStatuses(options.status);
    const limit = options.limit === undefined ? LS_LIMIT_DEFAULT : parseInteger("--limit", options.limit, { min: 0 });
    const config = configFrom(options);
    const tasks = await withStore(config, "existing", (store) =>
      store.tasks.list({ ...(status === undefined ? {} : { status }), ...(options.persona === undefined ? {} : { persona: options.persona }), limit }),
    );
    if (options.json) {
      printJson(tasks);
      return;
    }
    if (tasks.length === 0) {
      write("no tasks");
      return;
    }
    write(
      table(
        ["ID", "PERSONA", "STATUS", "ATTEMPTS", "DEPENDS ON", "TITLE", "RESULT / ERROR"],
        tasks.map((t) => [
          t.id,
          t.persona,
          t.status,
          `${t.attempts}/${t.maxAttempts}`,
          t.dependsOn.join(","),
          preview(t.title, 50),
          // A completed task keeps its last attempt's error; its result is what counts.
          t.error !== null && t.status !== "completed" ? `error: ${preview(t.error.message, 60)}` : preview(t.result),
        ]),
      ),
    );
  });
}
