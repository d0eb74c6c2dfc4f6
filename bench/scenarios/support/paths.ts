import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: the nearest folder up from this module whose package.json is roster's. */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "roster") return dir;
    dir = dirname(dir);
  }
  throw new Error("bench: cannot find roster's package.json above " + fileURLToPath(import.meta.url));
}

export const ROOT_DIR = findRoot();
/** Built bench code. */
export const DIST_BENCH_DIR = join(ROOT_DIR, "dist", "bench");
/** A built module of the bench, by its path under bench/ without extension ("peers/bullmq"). */
export function benchModule(name: string): string {
  return join(DIST_BENCH_DIR, `${name}.js`);
}
