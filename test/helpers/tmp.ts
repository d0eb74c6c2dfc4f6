import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A fresh temp folder and its removal; every test that touches disk gets its own. */
export interface TempDir {
  dir: string;
  path(...parts: string[]): string;
  cleanup(): void;
}

export function makeTempDir(prefix = "roster-test-"): TempDir {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    path: (...parts) => join(dir, ...parts),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
