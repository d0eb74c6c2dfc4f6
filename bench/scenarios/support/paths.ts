import { join } from "node:path";
import { repoRoot } from "../../lib/paths.js";

/** The repository root (bench/lib finds it). */
export const ROOT_DIR = repoRoot();
/** Built bench code. */
export const DIST_BENCH_DIR = join(ROOT_DIR, "dist", "bench");
/** A built module of the bench, by its path under bench/ without extension ("peers/bullmq"). */
export function benchModule(name: string): string {
  return join(DIST_BENCH_DIR, `${name}.js`);
}
