import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { RosterError } from "../errors.js";
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
    const where = error instanceof YAMLParseError && error.linePos ? ` line ${error.linePos[0].line + 1}` : "";
    throw new RosterError("PERSONA_INVALID", `${path}:${where} front matter is not valid YAML: ${(error as Error).message.split("\n")[0]}`, {
      cause: error,
      details: { file: path },
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

/** Every `*.md` in the folder, sorted; duplicate ids are an error naming both files. */
export function loadPersonaDir(dir: string): Persona[] {
  if (!existsSync(dir)) {
    throw new RosterError("PERSONA_INVALID", `${dir}: personas folder does not exist`, { details: { file: dir } });
  }
  if (!statSync(dir).isDirectory()) {
    throw new RosterError("PERSONA_INVALID", `${dir}: personas path is not a folder`, { details: { file: dir } });
  }
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".md") && !f.startsWith(".") && f.toLowerCase() !== "readme.md").sort();
  } catch (error) {
    throw new RosterError("PERSONA_INVALID", `${dir}: cannot read personas folder (${(error as Error).message})`, { cause: error });
  }
  const byId = new Map<string, string>();
  return files.map((file) => {
    const path = join(dir, file);
    const persona = parsePersonaFile(path, readFileSync(path, "utf8"));
    const other = byId.get(persona.id);
    if (other !== undefined) {
      throw new RosterError("PERSONA_INVALID", `${path}: id "${persona.id}" is already used by ${other}`, { details: { file: path, field: "id" } });
    }
    byId.set(persona.id, path);
    return persona;
  });
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
