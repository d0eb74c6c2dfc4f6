import { execFile } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve, sep } from "node:path";
import { RosterError } from "../../errors.js";
import type { AdapterPersona } from "../types.js";
import { repoInfo, resolveWorkspace } from "../../workspace/worktrees.js";
import { resolveProfile } from "./launch.js";

/**
 * A persona's own faults, found before an attempt makes anything (a worktree, a branch, a home):
 * its CLI cannot be found. Such an error is not the task's (docs/ARCHITECTURE.md rule 12): it
 * says `details.failure: "persona"`, and the store gives the attempt back uncounted and holds the
 * persona (its breaker, src/store/gates.ts) until it is fixed. `roster start` warns of it and
 * `roster run` refuses it before writing anything (src/cli/commands).
 */
export const PERSONA_FAULT = "persona";

/** Where the persona is defined, for messages: its file, else its id in the database. */
export function personaSource(persona: Pick<AdapterPersona, "id" | "file">): string {
  return persona.file == null ? `persona "${persona.id}" (from the database)` : `persona "${persona.id}" (${persona.file})`;
}

/** A command with a path separator (`./bin/agent`) is relative to the persona file's folder; a bare name is looked up on PATH. */
export function commandPath(command: string, personaDir: string | null): string {
  const hasSeparator = command.includes("/") || command.includes(sep);
  return hasSeparator && !isAbsolute(command) ? resolve(personaDir ?? process.cwd(), command) : command;
}

/** Whether the command names an executable file: a path as it is, a bare name on PATH (with PATHEXT on Windows). */
export function commandFound(command: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const hasSeparator = command.includes("/") || command.includes(sep);
  if (hasSeparator) return executable(command);
  const exts = process.platform === "win32" ? ["", ...(env.PATHEXT ?? ".EXE;.CMD;.BAT").split(";")] : [""];
  for (const folder of (env.PATH ?? "").split(delimiter)) {
    if (folder === "") continue;
    for (const ext of exts) if (executable(join(folder, command + ext))) return true;
  }
  return false;
}

function executable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The persona's CLI cannot be found: its error, a persona fault; null when it can. `env`: the CLI's PATH (the persona's env over roster's). */
export function missingCommand(persona: AdapterPersona, env: NodeJS.ProcessEnv = process.env): RosterError | null {
  const config = persona.adapter;
  if (config.kind !== "agent") return null;
  const command = resolveProfile(config).command;
  const path = commandPath(command, persona.dir);
  if (commandFound(path, { ...env, ...(config.env ?? {}) })) return null;
  return new RosterError("ADAPTER_NOT_FOUND", `${personaSource(persona)}: its command ${JSON.stringify(command)} cannot be found${path === command ? " on PATH" : ` (${path})`} or is not executable; its tasks wait until the persona is fixed`, {
    retryable: false,
    details: { failure: PERSONA_FAULT, persona: persona.id, ...(persona.file == null ? {} : { file: persona.file }), command, path },
  });
}

/** Marks an error as the persona's fault (the base of its workspace missing, its command gone at spawn), naming its file. */
export function asPersonaFault(error: RosterError, persona: AdapterPersona): RosterError {
  return new RosterError(error.code, `${personaSource(persona)}: ${error.message}; its tasks wait until the persona is fixed`, {
    retryable: false,
    cause: error,
    details: { ...(error.details ?? {}), failure: PERSONA_FAULT, persona: persona.id, ...(persona.file == null ? {} : { file: persona.file }) },
  });
}

/**
 * The persona's workspace cannot be made: its repository is no git repository, or its base is
 * no branch, tag or commit of it. Its error, a persona fault; null when it can. Reads only.
 */
export async function missingWorkspace(persona: AdapterPersona): Promise<RosterError | null> {
  const config = persona.adapter;
  if (config.kind !== "agent" || config.workspace === undefined) return null;
  const workspace = resolveWorkspace(config.workspace, persona.dir);
  try {
    const repo = await repoInfo(workspace.repo);
    const found = await new Promise<boolean>((done) => {
      execFile("git", ["rev-parse", "--verify", "--quiet", "--end-of-options", `${workspace.base}^{commit}`], { cwd: repo.root }, (error) => done(error === null));
    });
    if (found) return null;
    return asPersonaFault(new RosterError("CONFIG_INVALID", `workspace.base: "${workspace.base}" is not a branch, tag or commit of ${repo.root}`, { retryable: false, details: { field: "workspace.base", base: workspace.base, repo: repo.root } }), persona);
  } catch (error) {
    if (error instanceof RosterError && error.code === "CONFIG_INVALID") return asPersonaFault(error, persona);
    throw error;
  }
}
