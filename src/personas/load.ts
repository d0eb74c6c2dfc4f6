import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { resolveModulePath } from "../adapters/module.js";
import type { AdapterEnvironment } from "../adapters/registry.js";
import type { AdapterPersona } from "../adapters/types.js";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { RosterError, coerceError, isRosterError } from "../errors.js";
import { formatIssues } from "../store/input.js";
import type { PersonaRecord, PersonaUpsert } from "../store/types.js";
import { personaFrontMatterSchema, type Persona, type PersonaConfig } from "./schema.js";

const FRONT_MATTER = /^---\r?\n([\s\S]*?)\r?\n---\r?\n?([\s\S]*)$/;

/**
 * Parses one persona file: YAML front matter between `---` lines, then the
 * markdown definition. The yaml package parses; the split is the one regex above,
 * which is all front matter is. Errors name the file and the field.
 */
export function parsePersonaFile(path: string, text: string): Persona {
  const match = FRONT_MATTER.exec(text.replace(/^\uFEFF/, ""));
  if (match === null) {
    throw new RosterError("PERSONA_INVALID", `${path}: must start with YAML front matter between --- lines`, { details: { file: path } });
  }
  let data: unknown;
  try {
    data = parseYaml(match[1]!);
  } catch (error) {
    // The parser counts from the front matter's first line; the file has the opening --- above it.
    const pos = error instanceof YAMLParseError && error.linePos ? { line: error.linePos[0].line + 1, column: error.linePos[0].col } : null;
    const where = pos === null ? "" : ` line ${pos.line} column ${pos.column}:`;
    // The parser's own " at line N, column M:" counts differently; the file's position is given above.
    const reason = (error as Error).message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
    throw new RosterError("PERSONA_INVALID", `${path}:${where} front matter is not valid YAML (${reason})`, {
      cause: error,
      details: { file: path, ...(pos === null ? {} : pos) },
    });
  }
  const parsed = personaFrontMatterSchema.safeParse(data);
  if (!parsed.success) {
    throw new RosterError("PERSONA_INVALID", `${path}: ${formatIssues(parsed.error.issues, "front matter")}`, {
      details: { file: path, fields: parsed.error.issues.map((i) => i.path.join(".")) },
    });
  }
  const definition = match[2]!.trim();
  if (definition === "") {
    throw new RosterError("PERSONA_INVALID", `${path}: the markdown body (the persona's definition) is empty`, { details: { file: path } });
  }
  return { ...parsed.data, definition, sourcePath: resolve(path) };
}

/** A persona file that did not validate: its path and the PERSONA_INVALID error naming it. */
export interface InvalidPersonaFile {
  file: string;
  error: RosterError;
}

/** What a personas folder holds: the files that validate, and those that do not, each in file order. */
export interface PersonaDirReading {
  personas: Persona[];
  invalid: InvalidPersonaFile[];
}

/**
 * Every `*.md` in the folder, sorted, each validated on its own: one bad file does
 * not hide the others (a running supervisor serves the good ones). A file whose id
 * an earlier valid file already uses is invalid, naming both files. Throws only
 * when the folder itself cannot be read, naming it as `label` (a command passes
 * where the folder came from: `--personas dir` or `ROSTER_PERSONAS=dir`).
 */
export function readPersonaDir(dir: string, label: string = dir): PersonaDirReading {
  if (!existsSync(dir)) {
    throw new RosterError("PERSONA_INVALID", `${label}: personas folder does not exist`, { details: { file: dir } });
  }
  if (!statSync(dir).isDirectory()) {
    throw new RosterError("PERSONA_INVALID", `${label}: personas path is not a folder`, { details: { file: dir } });
  }
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".md") && !f.startsWith(".") && f.toLowerCase() !== "readme.md").sort();
  } catch (error) {
    throw new RosterError("PERSONA_INVALID", `${label}: cannot read personas folder (${(error as Error).message})`, { cause: error, details: { file: dir } });
  }
  const byId = new Map<string, string>();
  const reading: PersonaDirReading = { personas: [], invalid: [] };
  for (const file of files) {
    const path = join(dir, file);
    try {
      const persona = parsePersonaFile(path, readFileSync(path, "utf8"));
      const other = byId.get(persona.id);
      if (other !== undefined) {
        throw new RosterError("PERSONA_INVALID", `${path}: id "${persona.id}" is already used by ${other}`, { details: { file: path, field: "id" } });
      }
      byId.set(persona.id, path);
      reading.personas.push(persona);
    } catch (error) {
      const e = coerceError(error);
      // A file removed or unreadable between the listing and its read is reported like a bad one.
      const invalid = isRosterError(e, "PERSONA_INVALID")
          ? e
          : new RosterError("PERSONA_INVALID", `${path}: cannot read (${e.message})`, { cause: e, details: { file: path } });
      reading.invalid.push({ file: path, error: invalid });
    }
  }
  return reading;
}

/** Every `*.md` in the folder, sorted, all valid: the first bad file is thrown (commands refuse bad input whole). `label` as in readPersonaDir. */
export function loadPersonaDir(dir: string, label: string = dir): Persona[] {
  const { personas, invalid } = readPersonaDir(dir, label);
  if (invalid.length > 0) throw invalid[0]!.error;
  return personas;
}

export function toPersonaUpsert(persona: Persona): PersonaUpsert {
  const { definition, sourcePath, ...config } = persona;
  return { id: persona.id, name: persona.name, definition, config, sourcePath };
}

/** Rebuilds a persona from its stored row (database with file fallback). */
export function fromPersonaRecord(record: PersonaRecord): Persona {
  const parsed = personaFrontMatterSchema.safeParse(record.config);
  if (!parsed.success) {
    throw new RosterError("PERSONA_INVALID", `persona "${record.id}" in the database: ${formatIssues(parsed.error.issues, "config")}`);
  }
  const config: PersonaConfig = parsed.data;
  return { ...config, definition: record.definition, sourcePath: record.sourcePath };
}

/** What the worker threads get of a persona: no policy, the folder its relative paths resolve against. */
export function toAdapterPersona(persona: Persona): AdapterPersona {
  return {
    id: persona.id,
    name: persona.name,
    definition: persona.definition,
    adapter: persona.adapter,
    dir: persona.sourcePath === null ? null : dirname(persona.sourcePath),
    file: persona.sourcePath,
  };
}

/**
 * A `module` adapter that cannot load (its path leads out of the personas folder,
 * or names no file) would fail every task of its persona: refuse it up front with
 * PERSONA_INVALID naming the persona's file. The worker checks again when it
 * loads the module, in case the file changed since.
 */
export function assertModulePaths(personas: Persona[], env: Omit<AdapterEnvironment, "maxPayloadBytes">): void {
  for (const persona of personas) {
    if (persona.adapter.kind !== "module") continue;
    try {
      resolveModulePath(toAdapterPersona(persona), { ...env, maxPayloadBytes: 0 });
    } catch (error) {
      const e = coerceError(error);
      throw new RosterError("PERSONA_INVALID", `${persona.sourcePath ?? `persona "${persona.id}"`}: adapter.path: ${e.message}`, {
        cause: e,
        details: { field: "adapter.path", persona: persona.id },
      });
    }
  }
}
