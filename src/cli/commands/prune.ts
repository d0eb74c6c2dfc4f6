import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { write } from "../format.js";
import { printJson } from "../output.js";
import { addDbOption, addJsonOption, configFrom, parseDuration, withStore, type DbOptions, type JsonOptions } from "../options.js";

/**
 * `roster prune --older-than 7d`: retention. Deletes completed, failed and
 * cancelled tasks that finished before the cut, with their events, unless a
 * newer task still depends on them or descends from them. The store deletes in
 * bounded batches (one transaction each), so this loops until nothing is left.
 */
export function register(program: Command): void {
  const command = program
    .command("prune")
    .description("delete finished tasks (and their events) older than a duration, e.g. --older-than 7d")
    .requiredOption("--older-than <duration>", "finished longer ago than this: 500ms, 45s, 30m, 12h, 7d, 2w (0 prunes every finished task)");
  addDbOption(command);
  addJsonOption(command);
  command.action(async (options: DbOptions & JsonOptions & { olderThan: string }) => {
    const ageMs = parseDuration("--older-than", options.olderThan);
    const config = configFrom(options);
    const before = systemClock.now() - ageMs;
    const total = await withStore(config, "existing", async (store) => {
      const sum = { tasks: 0, events: 0 };
      for (;;) {
        const pruned = await store.maintenance.prune({ before });
        sum.tasks += pruned.tasks;
        sum.events += pruned.events;
        if (pruned.tasks === 0) return sum;
      }
    });
    if (options.json) {
      printJson({ ...total, before });
      return;
    }
    write(`pruned ${total.tasks} tasks and ${total.events} events finished before ${new Date(before).toISOString()}`);
  });
}
