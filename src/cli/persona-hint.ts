import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { RosterError } from "../errors.js";

/**
 * The persona file in `dir` that defines `id` (by its front matter's `id:`, or
 * by its file name), or null. Only a hint for an error message: the file is not
 * validated here, `roster init` or `start` does that when it syncs it.
 */
export function personaFileFor(dir: string, id: string): string | null {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return null;
  const files = readdirSync(dir).filter((f) => f.endsWith(".md") && !f.startsWith(".") && f.toLowerCase() !== "readme.md").sort();
  for (const file of files) {
    const path = join(dir, file);
    const text = readFileSync(path, "utf8");
    const front = /^---\r?\n([\s\S]*?)\r?\n---/.exec(text)?.[1] ?? "";
    const declared = /^id:\s*["']?([^"'\s#]+)/m.exec(front)?.[1];
    if (declared === id || (declared === undefined && file === `${id}.md`)) return path;
  }
  return null;
}

/**
 * An unknown-persona error from the store, with what the database cannot know:
 * that the persona is defined in a file of the personas folder that was never
 * synced. Other errors pass through unchanged.
 */
export function withPersonaFileHint(error: unknown, personasDir: string): unknown {
  if (!(error instanceof RosterError) || error.code !== "PERSONA_NOT_FOUND") return error;
  const details = (error.details ?? {}) as { persona?: unknown; retired?: unknown };
  if (typeof details.persona !== "string" || details.retired === true) return error;
  const file = personaFileFor(personasDir, details.persona);
  if (file === null) return error;
  const shown = relative(process.cwd(), file).startsWith("..") ? file : relative(process.cwd(), file);
  return new RosterError(error.code, `${error.message}; found in ${shown} but not synced: run \`roster init\` or \`roster start\``, {
    cause: error,
    details: { ...details, file },
    retryable: error.retryable,
  });
}
