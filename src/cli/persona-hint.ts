import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { RosterError, coerceError } from "../errors.js";
import { readPersonaDir, type InvalidPersonaFile } from "../personas/load.js";

/**
 * The persona file in `dir` that defines `id` (by its front matter's `id:`, or
 * by its file name), or null. Only a hint for an error message: a file whose front
 * matter does not validate is found too, by its `id:` line.
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
 * synced, and why. A file that does not validate is named with its error (no sync
 * would take it); a valid one beside a broken file says that `init` and `start`
 * refuse the folder until that file is fixed, while a running supervisor, which
 * syncs each file on its own, takes it within about two seconds. Other errors pass
 * through unchanged.
 */
export function withPersonaFileHint(error: unknown, personasDir: string): unknown {
  if (!(error instanceof RosterError) || error.code !== "PERSONA_NOT_FOUND") return error;
  const details = (error.details ?? {}) as { persona?: unknown; retired?: unknown };
  if (typeof details.persona !== "string" || details.retired === true) return error;
  const file = personaFileFor(personasDir, details.persona);
  if (file === null) return error;
  const invalid = invalidFiles(personasDir);
  const own = invalid.find((i) => i.file === file);
  const others = invalid.filter((i) => i !== own).map((i) => shown(i.file));
  let hint: string;
  if (own !== undefined) {
    // The error starts with the file's path; the hint names it once.
    const reason = own.error.message.startsWith(`${file}: `) ? own.error.message.slice(file.length + 2) : own.error.message;
    hint = `defined in ${shown(file)}, which does not validate (${reason}): fix it, then \`roster init\` or a running \`roster start\` syncs it`;
    if (others.length > 0) hint += ` (\`roster init\` also needs ${others.join(", ")} fixed)`;
  } else if (others.length > 0) {
    const verb = others.length === 1 ? "does" : "do";
    hint =
      `found in ${shown(file)} but not synced: a running \`roster start\` syncs it within about two seconds; ` +
      `\`roster init\` and \`roster start\` refuse the folder while ${others.join(", ")} ${verb} not validate`;
  } else {
    hint = `found in ${shown(file)} but not synced: run \`roster init\` or \`roster start\` (a running \`roster start\` syncs it within about two seconds)`;
  }
  return new RosterError(error.code, `${error.message}; ${hint}`, {
    cause: error,
    details: { ...details, file },
    retryable: error.retryable,
  });
}

/** The folder's files that do not validate; none when the folder cannot be read (this is only a hint). */
function invalidFiles(dir: string): InvalidPersonaFile[] {
  try {
    return readPersonaDir(dir).invalid;
  } catch (error) {
    coerceError(error);
    return [];
  }
}

function shown(file: string): string {
  return relative(process.cwd(), file).startsWith("..") ? file : relative(process.cwd(), file);
}
