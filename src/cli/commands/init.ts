import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { systemClock } from "../../clock.js";
import { RosterError } from "../../errors.js";
import { loadPersonaDir, toPersonaUpsert } from "../../personas/load.js";
import { write } from "../format.js";
import { printJson } from "../output.js";
import {
  addDbOption,
  addJsonOption,
  addPersonasOption,
  configFrom,
  configValueLabel,
  withStore,
  type DbOptions,
  type JsonOptions,
  type PersonasOptions,
} from "../options.js";

/** The package's own personas/ folder, found from this module in src/ or dist/src/ (as migrations/ is). */
export function bundledPersonasDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, "personas");
    if (existsSync(join(dir, "package.json")) && existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new RosterError("INTERNAL", "cannot find roster's bundled personas/ folder next to the package");
}

function personaFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith(".md") && !f.startsWith(".") && f.toLowerCase() !== "readme.md");
}

/**
 * `roster init`: creates (migrates) the database, copies the bundled example
 * personas into the personas folder when it has none, and syncs them. Safe to run
 * again: existing persona files are never overwritten. Persona files are checked
 * before the database is touched, so a bad one leaves nothing written.
 */
export function register(program: Command): void {
  const command = program
    .command("init")
    .description("create the database and copy the example personas if there are none; safe to run again");
  addDbOption(command);
  addPersonasOption(command);
  addJsonOption(command);
  command.action(async (options: DbOptions & PersonasOptions & JsonOptions) => {
    const config = configFrom(options);
    const dir = config.personasDir;
    if (existsSync(dir) && !statSync(dir).isDirectory()) {
      throw new RosterError("VALIDATION", `${configValueLabel(config, "personasDir")}: is a file, not a folder`, { details: { field: "personas" } });
    }
    const copied: string[] = [];
    if (!existsSync(dir) || personaFiles(dir).length === 0) {
      const source = bundledPersonasDir();
      if (resolve(source) !== resolve(dir)) {
        mkdirSync(dir, { recursive: true });
        for (const file of personaFiles(source).sort()) {
          copyFileSync(join(source, file), join(dir, file));
          copied.push(join(dir, file));
        }
      }
    }
    const personas = loadPersonaDir(dir, configValueLabel(config, "personasDir"));
    const now = systemClock.now();
    await withStore(config, "create", (store) =>
      store.personas.sync({ personas: personas.map(toPersonaUpsert), now, sourceDir: resolve(dir) }),
    );
    const ids = personas.map((p) => p.id);
    if (options.json) {
      printJson({ db: config.dbPath, personasDir: dir, copied, personas: ids });
      return;
    }
    write(`database ready: ${config.dbPath}`);
    if (copied.length > 0) write(`copied ${copied.length} demo personas (simulated work; real agent-CLI ones are in personas/examples/) into ${dir}`);
    write(`personas synced from ${dir}: ${ids.join(", ") || "(none)"}`);
  });
}
