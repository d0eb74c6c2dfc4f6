import Database from "better-sqlite3";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

/**
 * Opening a database checks its migrations inside BEGIN IMMEDIATE, a write like
 * any other; so when another connection holds the write lock past busy_timeout,
 * the open retries with the backoff of write transactions instead of failing at
 * once (issue 12, defect 8). The opener is a child process (the open blocks its
 * thread); this process holds the lock and lets go once the child reports its
 * first retry, i.e. once the lock has outlasted busy_timeout.
 */
const FIXTURE = join(import.meta.dirname, "..", "fixtures", "open-under-lock.mjs");

let temp: TempDir;
beforeEach(() => {
  temp = makeTempDir("roster-open-busy-");
});
afterEach(() => temp.cleanup());

/** Runs the fixture; `onLine` sees each stdout line as it comes. Resolves with every line and the exit code. */
function openInChild(path: string, busyTimeoutMs: number, retries: number, onLine: (line: string) => void): Promise<{ lines: string[]; code: number | null }> {
  const child = spawn(process.execPath, [FIXTURE, path, String(busyTimeoutMs), String(retries)], { stdio: ["ignore", "pipe", "inherit"] });
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push(line);
    onLine(line);
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ lines, code }));
  });
}

/** A connection holding the write lock (BEGIN IMMEDIATE) until release(). */
function holdWriteLock(path: string): { release(): void } {
  const holder = new Database(path);
  holder.pragma("busy_timeout = 0");
  holder.prepare("BEGIN IMMEDIATE").run();
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      holder.prepare("ROLLBACK").run();
      holder.close();
    },
  };
}

describe("opening under a held write lock", () => {
  it("retries an up-to-date database's migration check past busy_timeout and opens once the lock is let go", async () => {
    const path = temp.path("roster.db");
    await (await openStore({ path, now: 0 })).close();
    const lock = holdWriteLock(path);
    try {
      const { lines, code } = await openInChild(path, 50, 5, (line) => {
        if (line === "busy-retry 1") lock.release();
      });
      expect(lines[0]).toBe("busy-retry 1");
      expect(lines.at(-1)).toMatch(/^opened \d+$/);
      expect(code).toBe(0);
    } finally {
      lock.release();
    }
  });

  it("retries the first open of an empty file held by another connection, then migrates it", async () => {
    const path = temp.path("fresh.db");
    const lock = holdWriteLock(path);
    try {
      const { lines, code } = await openInChild(path, 50, 5, (line) => {
        if (line === "busy-retry 1") lock.release();
      });
      expect(lines[0]).toBe("busy-retry 1");
      expect(lines.at(-1)).toMatch(/^opened \d+$/);
      expect(code).toBe(0);
    } finally {
      lock.release();
    }
  });

  it("gives up with DATABASE_BUSY after the set number of retries when the lock is never let go", async () => {
    const path = temp.path("roster.db");
    await (await openStore({ path, now: 0 })).close();
    const lock = holdWriteLock(path);
    try {
      const { lines, code } = await openInChild(path, 20, 2, () => {});
      expect(lines.slice(0, 2)).toEqual(["busy-retry 1", "busy-retry 2"]);
      expect(lines[2]).toMatch(new RegExp(`^error DATABASE_BUSY: opening ${path}: the database is locked by another connection and stayed locked past busy_timeout`));
      expect(lines).toHaveLength(3);
      expect(code).toBe(1);
    } finally {
      lock.release();
    }
  });
});
