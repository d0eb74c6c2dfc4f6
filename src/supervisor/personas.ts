import { resolve } from "node:path";
import { coerceError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import { assertModulePaths, fromPersonaRecord, loadPersonaDir, readPersonaDir, toPersonaUpsert, type InvalidPersonaFile } from "../personas/load.js";
import type { Persona } from "../personas/schema.js";
import type { PersonaRecord, Store } from "../store/index.js";

/**
 * Database with file fallback: the persona files of `dir` are validated (a bad
 * file stops the start with an error naming it) and synced into the database;
 * personas that only the database still has (their file is gone) keep being
 * served. Returns the personas to serve, files first.
 */
export async function syncPersonas(store: Store, dir: string, now: number, logger?: Logger): Promise<Persona[]> {
  return syncPersonaFiles(store, dir, loadPersonaDir(dir), now, logger);
}

/**
 * A running supervisor's sync (PersonaReloader): every file that validates is
 * synced whatever the state of the others. A file that does not is returned in
 * `invalid` and keeps its last good version: the stored persona last synced from
 * that path, still served and not marked as gone. A new file that never validated
 * has none, so nothing of it is served. Throws only when the folder cannot be read.
 */
export async function syncPersonasKeepingLastGood(store: Store, dir: string, now: number): Promise<{ personas: Persona[]; invalid: InvalidPersonaFile[] }> {
  const { personas: valid, invalid } = readPersonaDir(dir);
  const kept: Persona[] = [];
  if (invalid.length > 0) {
    const taken = new Set(valid.map((p) => p.id));
    const stored = await store.personas.list({ includeRetired: true });
    for (const { file } of invalid) {
      const record = lastSyncedFrom(stored, resolve(file));
      // A valid file that took the id since wins over the broken file's old version.
      if (record === null || taken.has(record.id)) continue;
      try {
        kept.push(fromPersonaRecord(record));
        taken.add(record.id);
      } catch (error) {
        // Its stored version no longer validates either: nothing is kept (the sync serves what the database can).
        coerceError(error);
      }
    }
  }
  return { personas: await syncPersonaFiles(store, dir, [...valid, ...kept], now), invalid };
}

/** The stored persona last synced from `path`: one whose file was present at the last sync first, then the newest. */
function lastSyncedFrom(stored: readonly PersonaRecord[], path: string): PersonaRecord | null {
  let best: PersonaRecord | null = null;
  for (const record of stored) {
    if (record.sourcePath !== path) continue;
    if (best === null || (record.filePresent && !best.filePresent) || (record.filePresent === best.filePresent && record.updatedAt > best.updatedAt)) best = record;
  }
  return best;
}

/** Syncs the given personas of `dir`'s files and returns the personas to serve (files first, then database-only ones, retired ones left out). */
async function syncPersonaFiles(store: Store, dir: string, fromFiles: Persona[], now: number, logger?: Logger): Promise<Persona[]> {
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
