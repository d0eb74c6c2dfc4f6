/**
 * liteque 0.8 with its documented API: SqliteQueue.enqueue (one call per job; it has no
 * bulk enqueue) and a Runner with `concurrency` and an inline no-op, run until empty.
 * liteque 0.8 hands better-sqlite3's db.transaction() an async function, which
 * better-sqlite3 >= 11.10 rejects, so it lives in bench/liteque/ with better-sqlite3
 * 11.9 (its own package.json and lock), installed on demand with `npm ci` there.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT_DIR } from "../scenarios/support/paths.js";
import { sampleRss } from "../scenarios/support/resources.js";
import { queueRun, type QueueRun, type QueueRunOptions } from "./types.js";

export const LITEQUE_DIR = join(ROOT_DIR, "bench", "liteque");

/** Versions installed in bench/liteque, or null when it is not installed. */
export function litequeInstalled(): { liteque: string; betterSqlite3: string } | null {
  const read = (name: string): string | null => {
    const file = join(LITEQUE_DIR, "node_modules", name, "package.json");
    return existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version : null;
  };
  const liteque = read("liteque");
  const betterSqlite3 = read("better-sqlite3");
  const binding = join(LITEQUE_DIR, "node_modules", "better-sqlite3", "build", "Release", "better_sqlite3.node");
  if (liteque === null || betterSqlite3 === null || !existsSync(binding)) return null;
  return { liteque, betterSqlite3 };
}

/** `npm ci` in bench/liteque (builds better-sqlite3 11.9; about a minute). Rejects with npm's output tail. */
export function installLiteque(log: (line: string) => void): Promise<void> {
  // Under `npm run`, npm_execpath is npm's own CLI script: run it with this node, no shell.
  const npmCli = process.env.npm_execpath;
  const [command, args] =
    npmCli !== undefined && npmCli.endsWith(".js")
      ? [process.execPath, [npmCli, "ci", "--no-audit", "--no-fund"]]
      : [process.platform === "win32" ? "npm.cmd" : "npm", ["ci", "--no-audit", "--no-fund"]];
  log(`liteque: installing bench/liteque (npm ci, builds better-sqlite3 11.9; about a minute)`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: LITEQUE_DIR, stdio: ["ignore", "pipe", "pipe"], shell: process.platform === "win32" });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (output += c.toString("utf8")));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code === 0 && litequeInstalled() !== null) resolve();
      else reject(new Error(`npm ci in bench/liteque failed (exit ${code}): ${output.trim().split("\n").slice(-8).join(" | ")}`));
    });
  });
}

interface LitequeModule {
  buildDBClient(path: string, options?: { runMigrations?: boolean; walEnabled?: boolean }): unknown;
  SqliteQueue: new (name: string, db: unknown, options: { defaultJobArgs: { numRetries: number }; keepFailedJobs: boolean }) => {
    enqueue(payload: unknown): Promise<unknown>;
  };
  Runner: new (
    queue: unknown,
    funcs: { run: (job: unknown) => Promise<void>; onComplete?: () => Promise<void>; onError?: (job: { error: Error }) => Promise<void> },
    opts: { pollIntervalMs: number; timeoutSecs: number; concurrency: number },
  ) => { runUntilEmpty(): Promise<void> };
}

export async function runLiteque(options: QueueRunOptions): Promise<QueueRun> {
  const versions = litequeInstalled();
  if (versions === null) throw new Error("bench/liteque is not installed (run `npm ci` in bench/liteque)");
  const rss = sampleRss();
  // Resolve liteque (and through it better-sqlite3 11.9) from bench/liteque, not the root.
  const require = createRequire(join(LITEQUE_DIR, "package.json"));
  const lq = (await import(pathToFileURL(require.resolve("liteque")).href)) as LitequeModule;
  const db = lq.buildDBClient(join(options.dir, "liteque.db"), { runMigrations: true });
  const queue = new lq.SqliteQueue("noop", db, { defaultJobArgs: { numRetries: 0 }, keepFailedJobs: false });

  const t0 = performance.now();
  for (let i = 0; i < options.jobs; i++) await queue.enqueue({ i });
  const enqueueMs = performance.now() - t0;

  let done = 0;
  let failure: Error | null = null;
  const runner = new lq.Runner(
    queue,
    {
      run: async () => undefined,
      onComplete: async () => {
        done++;
      },
      onError: async (job) => {
        failure ??= job.error;
      },
    },
    { pollIntervalMs: 10, timeoutSecs: 60, concurrency: options.concurrency },
  );
  const t1 = performance.now();
  await runner.runUntilEmpty();
  const processMs = performance.now() - t1;
  if (failure !== null) throw failure;
  if (done !== options.jobs) throw new Error(`liteque completed ${done} of ${options.jobs} jobs`);
  return queueRun("liteque", options.jobs, enqueueMs, processMs, rss.stop().peakRssMb, {
    version: versions.liteque,
    betterSqlite3: versions.betterSqlite3,
    concurrency: options.concurrency,
    enqueue: "SqliteQueue.enqueue, one call per job (no bulk API)",
  });
}
