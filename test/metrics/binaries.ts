import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** The absolute path of an executable on PATH (or in /usr/bin), or null. */
export function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/bin", "/usr/local/bin"].filter((d) => d !== "");
  const exts = process.platform === "win32" ? [".exe", ".cmd", ""] : [""];
  for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = join(dir, name + ext);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // Not here; try the next folder.
      }
    }
  }
  return null;
}

/**
 * In CI (CI=true) a missing binary is a failure, not a skip: .ci/run installs
 * Debian's prometheus package, so its absence means the environment is broken.
 * Throwing at module load fails the whole test file with this message.
 */
export function requireBinaryInCi(name: string, path: string | null): void {
  if (path === null && process.env.CI === "true") {
    throw new Error(`${name} is not installed, and CI=true: install Debian's prometheus package (see .ci/run)`);
  }
}
