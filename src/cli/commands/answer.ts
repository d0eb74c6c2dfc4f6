import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { RosterError } from "../../errors.js";
import { oneLine, table, write } from "../format.js";
import { printJson } from "../output.js";
import { addDbOption, addJsonOption, configFrom, parseTaskId, withStore, type DbOptions, type JsonOptions } from "../options.js";

/**
 * `roster answer ID "…"`: answers the question a task's attempt asked; the task
 * returns to pending and its next attempt gets the question and the answer.
 * `roster answer` alone lists the tasks waiting for a person.
 */
export function register(program: Command): void {
  const command = program
    .command("answer")
    .description("answer the question a task asked (it runs again with the answer); without arguments, list tasks waiting for a person")
    .argument("[id]", "task id")
    .argument("[answer]", "the answer")
    .option("--by <name>", "who answers (recorded in the task's events)");
  addDbOption(command);
  addJsonOption(command);
  command.action(async (rawId: string | undefined, answer: string | undefined, options: DbOptions & JsonOptions & { by?: string }) => {
    const config = configFrom(options);
    if (rawId === undefined) {
      const parked = await withStore(config, "existing", (store) => store.humans.listParked({ limit: 0 }));
      if (options.json) {
        printJson(parked);
        return;
      }
      if (parked.length === 0) {
        write("no task is waiting for a person");
        return;
      }
      write(table(["id", "state", "persona", "asks"], parked.map((p) => [p.id, p.status, p.persona, oneLine(p.request?.question ?? p.title, 80)])));
      return;
    }
    const taskId = parseTaskId(rawId);
    if (answer === undefined || answer.trim() === "") {
      throw new RosterError("VALIDATION", "answer: give the answer after the task id, e.g. roster answer 42 \"use the main branch\"", { details: { field: "answer" } });
    }
    if (options.by !== undefined && (options.by.trim() === "" || options.by.length > 200)) {
      throw new RosterError("VALIDATION", "--by: must be a name of 1 to 200 characters", { details: { field: "by" } });
    }
    const by = options.by === undefined ? "cli" : `cli:${options.by.trim()}`;
    const result = await withStore(config, "existing", (store) => store.humans.answer({ taskId, answer, by, now: systemClock.now() }));
    if (options.json) {
      printJson({ id: taskId, ...result });
      return;
    }
    write(`task ${taskId}: answered; ${result.status} again`);
  });
}
