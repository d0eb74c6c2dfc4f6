import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { write } from "../format.js";
import { printJson } from "../output.js";
import { addDbOption, addJsonOption, configFrom, parseTaskId, withStore, type DbOptions, type JsonOptions } from "../options.js";

/** `roster retry ID`: a failed or cancelled task runs again; the dependents it blocked wait for it again. */
export function register(program: Command): void {
  const command = program
    .command("retry")
    .description("run a failed or cancelled task again (its blocked dependents wait for it again)")
    .argument("<id>", "task id");
  addDbOption(command);
  addJsonOption(command);
  command.action(async (rawId: string, options: DbOptions & JsonOptions) => {
    const taskId = parseTaskId(rawId);
    const config = configFrom(options);
    const result = await withStore(config, "existing", (store) => store.tasks.retry({ taskId, by: "cli", now: systemClock.now() }));
    if (options.json) {
      printJson({ id: taskId, ...result });
      return;
    }
    write(`task ${taskId}: ${result.status}${result.unblocked.length > 0 ? `; waiting again: ${result.unblocked.join(", ")}` : ""}`);
  });
}
