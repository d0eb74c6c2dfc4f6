import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import type { WhyReport } from "../../store/index.js";
import { write } from "../format.js";
import { printJson } from "../output.js";
import { addDbOption, addJsonOption, configFrom, parseTaskId, withStore, type DbOptions, type JsonOptions } from "../options.js";

/** The report as text: the task, then one line per reason, its code first. */
export function formatWhy(report: WhyReport): string {
  const lines = [`task ${report.taskId} "${report.title}" (${report.persona}) is ${report.status}`];
  for (const reason of report.reasons) lines.push(`  ${reason.code}: ${reason.message}`);
  return lines.join("\n");
}

/** `roster why ID`: every reason a task is not running (dependencies, backoff, limits, people, supervisors). */
export function register(program: Command): void {
  const command = program
    .command("why")
    .description("say why a task is not running: every reason, each named")
    .argument("<id>", "task id");
  addDbOption(command);
  addJsonOption(command);
  command.action(async (rawId: string, options: DbOptions & JsonOptions) => {
    const taskId = parseTaskId(rawId);
    const config = configFrom(options);
    const report = await withStore(config, "existing", (store) => store.why.explain({ taskId, now: systemClock.now() }));
    if (options.json) {
      printJson(report);
      return;
    }
    write(formatWhy(report));
  });
}
