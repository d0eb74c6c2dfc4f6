import type { Command } from "commander";
import { localTime, table, write } from "../format.js";
import { printJson } from "../output.js";
import { addDbOption, addJsonOption, configFrom, withStore, type DbOptions, type JsonOptions } from "../options.js";

/** `roster agents`: registered agents (supervisors, MCP sessions), active ones unless --all. */
export function register(program: Command): void {
  const command = program
    .command("agents")
    .description("list active agents (supervisors, MCP workers) and the tasks they hold")
    .option("--all", "include expired and deregistered agents");
  addDbOption(command);
  addJsonOption(command);
  command.action(async (options: DbOptions & JsonOptions & { all?: boolean }) => {
    const config = configFrom(options);
    const agents = await withStore(config, "existing", (store) => store.agents.list({ includeInactive: options.all === true }));
    if (options.json) {
      printJson(agents);
      return;
    }
    if (agents.length === 0) {
      write(options.all ? "no agents" : "no active agents (--all shows inactive ones)");
      return;
    }
    write(
      table(
        ["ID", "NAME", "KIND", "PERSONA", "STATUS", "TASKS", "PID", "HOST", "LAST HEARTBEAT"],
        agents.map((a) => [a.id, a.name, a.kind, a.personaId ?? "", a.status, a.heldTasks, a.pid, a.hostname, localTime(a.lastHeartbeatAt)]),
      ),
    );
  });
}
