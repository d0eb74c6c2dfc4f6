import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { RosterError } from "../../errors.js";
import { write } from "../format.js";
import { printJson } from "../output.js";
import { addDbOption, addJsonOption, configFrom, parseTaskId, withStore, type DbOptions, type JsonOptions } from "../options.js";

/** Who decided, as recorded in the audit trail: "cli", or "cli:<name>" with --by. */
function decidedBy(by: string | undefined): string {
  if (by === undefined) return "cli";
  if (by.trim() === "" || by.length > 200) throw new RosterError("VALIDATION", "--by: must be a name of 1 to 200 characters", { details: { field: "by" } });
  return `cli:${by.trim()}`;
}

/** `roster approve ID [--note]` and `roster reject ID --reason`: a person's decision on an approval task. */
export function register(program: Command): void {
  const approve = program
    .command("approve")
    .description("approve a task awaiting approval: it completes with the note as its result")
    .argument("<id>", "task id")
    .option("--note <text>", "the approval's note, handed to dependents as the result")
    .option("--by <name>", "who approves (recorded in the task's events)");
  addDbOption(approve);
  addJsonOption(approve);
  approve.action(async (rawId: string, options: DbOptions & JsonOptions & { note?: string; by?: string }) => {
    const taskId = parseTaskId(rawId);
    const by = decidedBy(options.by);
    const config = configFrom(options);
    const result = await withStore(config, "existing", (store) =>
      store.humans.approve({ taskId, by, now: systemClock.now(), ...(options.note === undefined ? {} : { note: options.note }) }),
    );
    if (options.json) {
      printJson({ id: taskId, status: "completed", ...result });
      return;
    }
    write(`task ${taskId}: approved${result.readied.length > 0 ? `; ready now: ${result.readied.join(", ")}` : ""}`);
  });

  const reject = program
    .command("reject")
    .description("reject a task awaiting approval: it fails and its dependents become blocked")
    .argument("<id>", "task id")
    .requiredOption("--reason <text>", "why (recorded as the task's error)")
    .option("--by <name>", "who rejects (recorded in the task's events)");
  addDbOption(reject);
  addJsonOption(reject);
  reject.action(async (rawId: string, options: DbOptions & JsonOptions & { reason: string; by?: string }) => {
    const taskId = parseTaskId(rawId);
    const by = decidedBy(options.by);
    const config = configFrom(options);
    const result = await withStore(config, "existing", (store) => store.humans.reject({ taskId, reason: options.reason, by, now: systemClock.now() }));
    if (options.json) {
      printJson({ id: taskId, status: "failed", ...result });
      return;
    }
    write(`task ${taskId}: rejected${result.blocked.length > 0 ? `; blocked: ${result.blocked.join(", ")}` : ""}`);
  });
}
