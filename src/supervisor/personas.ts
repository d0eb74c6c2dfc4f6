import { resolve } from "node:path";
import { coerceError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import { assertModulePaths, fromPersonaRecord, loadPersonaDir, toPersonaUpsert } from "../personas/load.js";
import type { Persona } from "../personas/schema.js";
import type { Store } from "../store/index.js";

/**
 * Database with file fallback: the persona files of `dir` are validated (a bad
 * file stops the start with an error naming it) and synced into the database;
 * personas that only the database still has (their file is gone) keep being
 * served. Returns the personas to serve, files first.
 */
export async function syncPersonas(store: Store, dir: string, now: number, logger?: Logger): Promise<Persona[]> {
  const fromFiles = loadPersonaDir(dir);
  await store.personas.sync({ personas: fromFiles.map(toPersonaUpsert), now, sourceDir: resolve(dir) });
  // A retired persona (roster personas retire) is not served, even while its file is there.
  const retired = new Set((await store.personas.list({ includeRetired: true })).filter((r) => r.retiredAt !== null).map((r) => r.id));
  const served = new Map<string, Persona>(fromFiles.filter((p) => !retired.has(p.id)).map((p) => [p.id, p]));
  for (const record of await store.personas.list()) {
    if (served.has(record.id)) continue;
    try {
      served.set(record.id, fromPersonaRecord(record));
      logger?.info({ persona: record.id, sourcePath: record.sourcePath }, "serving a persona from the database (its file is gone)");
    } catch (error) {
      logger?.warn({ persona: record.id, err: coerceError(error) }, "not serving a stored persona whose config no longer validates");
    }
  }
  return [...served.values()];
}

/** The personas a running supervisor may take on (a reload): those whose module path is refused are reported and left out. */
export function servable(personas: readonly Persona[], config: { personasDir: string; allowAbsoluteModules: boolean }, report: (error: Error) => void): Persona[] {
  const personasDir = resolve(config.personasDir);
  const valid: Persona[] = [];
  for (const persona of personas) {
    try {
      assertModulePaths([persona], { personasDir, allowAbsoluteModules: config.allowAbsoluteModules });
      valid.push(persona);
    } catch (error) {
      report(coerceError(error));
    }
  }
  return valid;
}
