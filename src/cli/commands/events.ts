import type { Command } from "commander";
import { eventData, localTime, table, write } from "../format.js";
import { printJson } from "../output.js";
import { addDbOption, addJsonOption, configFrom, parseTaskId, withStore, type DbOptions, type JsonOptions } from "../options.js";

/** `roster events ID`: a task's audit trail, oldest first, each event's data whole; times local. */
export function register(program: Command): void {
  const command = program.command("events").description("list a task's events (its audit trail), oldest first").argument("<id>", "task id");
  addDbOption(command);
  addJsonOption(command);
  command.action(async (rawId: string, options: DbOptions & JsonOptions) => {
    const taskId = parseTaskId(rawId);
    const config = configFrom(options);
    const events = await withStore(config, "existing", (store) => store.tasks.events({ taskId, limit: 0 }));
    if (options.json) {
      printJson(events.map((e) => ({ type: e.type, at: e.at, attempt: e.attempt, agentId: e.agentId, data: e.data, id: e.id, taskId: e.taskId })));
      return;
    }
    // The data column whole: it is the audit trail, and a cut error message hides the part that matters.
    write(
      table(
        ["AT", "TYPE", "ATTEMPT", "AGENT", "DATA"],
        events.map((e) => [localTime(e.at), e.type, e.attempt, e.agentId, eventData(e.data)]),
        { whole: [4] },
      ),
    );
  });
}
