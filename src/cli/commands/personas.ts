import { existsSync } from "node:fs";
import type { Command } from "commander";
import { table, write } from "../format.js";
import { printJson } from "../output.js";
import { addDbOption, addJsonOption, configFrom, withStore, type DbOptions, type JsonOptions } from "../options.js";

/**
 * `roster personas`: the personas the database knows (synced by `init` and
 * `start`), with whether their file is still there. The database keeps serving a
 * persona whose file is gone.
 */
export function register(program: Command): void {
  const command = program.command("personas").description("list the personas in the database: adapter, concurrency, and whether the file is present");
  addDbOption(command);
  addJsonOption(command);
  command.action(async (options: DbOptions & JsonOptions) => {
    const config = configFrom(options);
    const records = await withStore(config, "existing", (store) => store.personas.list());
    const personas = records.map((p) => {
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
      };
    });
    if (options.json) {
      printJson(personas);
      return;
    }
    if (personas.length === 0) {
      write("no personas; run `roster init` or `roster start` to sync them from the personas folder");
      return;
    }
    write(
      table(
        ["ID", "NAME", "ADAPTER", "CONCURRENCY", "FILE"],
        personas.map((p) => [p.id, p.name, p.adapter, p.concurrency, p.filePresent ? p.sourcePath : `missing${p.sourcePath === null ? "" : ` (${p.sourcePath})`}`]),
      ),
    );
  });
}
