import { existsSync } from "node:fs";
import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import type { PersonaRecord } from "../../store/index.js";
import { localTime, table, write } from "../format.js";
import { printJson } from "../output.js";
import { addDbOption, addJsonOption, configFrom, withStore, type DbOptions, type JsonOptions } from "../options.js";

/**
 * `roster personas`: the personas the database knows (synced by `init` and
 * `start`), with whether their file is still there. The database keeps serving a
 * persona whose file is gone. `roster personas retire ID` takes one out of
 * service (its tasks are kept; new ones are refused; lists hide it unless
 * --all); `roster personas unretire ID` brings it back.
 */
export function register(program: Command): void {
  const command = program
    .command("personas")
    .description("list the personas in the database: adapter, concurrency, and whether the file is present")
    .option("--all", "also list retired personas");
  addDbOption(command);
  addJsonOption(command);
  command.action(async (options: DbOptions & JsonOptions & { all?: boolean }) => {
    const config = configFrom(options);
    const records = await withStore(config, "existing", (store) => store.personas.list({ includeRetired: options.all === true }));
    const personas = records.map(personaJson);
    if (options.json) {
      printJson(personas);
      return;
    }
    if (personas.length === 0) {
      write("no personas; run `roster init` or `roster start` to sync them from the personas folder");
      return;
    }
    const headers = ["ID", "NAME", "ADAPTER", "CONCURRENCY", "FILE"];
    if (options.all === true) headers.push("RETIRED");
    write(
      table(
        headers,
        personas.map((p) => {
          const row: Array<string | number | null> = [p.id, p.name, p.adapter, p.concurrency, p.filePresent ? p.sourcePath : `missing${p.sourcePath === null ? "" : ` (${p.sourcePath})`}`];
          if (options.all === true) row.push(p.retiredAt === null ? "" : localTime(p.retiredAt));
          return row;
        }),
      ),
    );
  });

  for (const [name, retired] of [
    ["retire", true],
    ["unretire", false],
  ] as const) {
    const sub = command
      .command(name)
      .description(
        retired
          ? "take a persona out of service: its tasks are kept, new tasks naming it are refused, lists hide it (a later sync does not bring it back)"
          : "put a retired persona back in service",
      )
      .argument("<id>", "persona id");
    addDbOption(sub);
    addJsonOption(sub);
    sub.action(async (id: string, _options: DbOptions & JsonOptions) => {
      // `personas` has --db and --json too, and commander gives them to the parent wherever they stand.
      const options = sub.optsWithGlobals<DbOptions & JsonOptions>();
      const config = configFrom(options);
      const record = await withStore(config, "existing", (store) => store.personas.retire({ id, retired, now: systemClock.now() }));
      if (options.json) printJson(personaJson(record));
      else write(retired ? `persona ${id} retired; its tasks are kept (roster personas unretire ${id} to undo)` : `persona ${id} is in service again`);
    });
  }
}

function personaJson(p: PersonaRecord) {
  const adapter = p.config.adapter as { kind?: unknown } | undefined;
  return {
    id: p.id,
    name: p.name,
    adapter: typeof adapter?.kind === "string" ? adapter.kind : null,
    concurrency: typeof p.config.concurrency === "number" ? p.config.concurrency : null,
    sourcePath: p.sourcePath,
    // Checked now, not at the last sync, so a deleted file shows at once.
    filePresent: p.sourcePath !== null && existsSync(p.sourcePath),
    config: p.config,
    updatedAt: p.updatedAt,
    retiredAt: p.retiredAt,
  };
}
