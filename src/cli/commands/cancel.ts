import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { write } from "../format.js";
import { printJson } from "../output.js";
import { addDbOption, addJsonOption, configFrom, parseTaskId, withStore, type DbOptions, type JsonOptions } from "../options.js";

/** `roster cancel ID`: an unfinished task is cancelled; its dependents become blocked. */
export function register(program: Command): void {
  const command = program
    .command("cancel")
    .description("cancel an unfinished task (its dependents become blocked)")
    .argument("<id>", "task id")
    .option("--reason <text>", "recorded in the task's events");
  addDbOption(command);
  addJsonOption(command);
  command.action(async (rawId: string, options: DbOptions & JsonOptions & { reason?: string }) => {
    const taskId = parseTaskId(rawId);
    const config = configFrom(options);
    const result = await withStore(config, "existing", (store) =>
      store.tasks.cancel({ taskId, by: "cli", now: systemClock.now(), ...(options.reason === undefined ? {} : { reason: options.reason }) }),
    );
    if (options.json) {
      printJson({ id: taskId, ...result });
      return;
    }
    write(`task ${taskId}: cancelled${result.blocked.length > 0 ? `; blocked: ${result.blocked.join(", ")}` : ""}`);
  });
}
