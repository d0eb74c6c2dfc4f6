import { spawn } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { openStore } from "../../src/store/index.js";
import { sqliteTableCounts } from "../../src/store/sqlite/introspect.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

/** The built CLI; `npm test` builds first (`npx tsc -p tsconfig.json` when running vitest alone). */
export const BIN = join(import.meta.dirname, "..", "..", "dist", "src", "cli", "bin.js");

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node dist/src/cli/bin.js ...args` in `cwd`, with every ROSTER_* variable
 * of the parent removed (then `env` added), so only the flags a test passes count.
 */
export function roster(args: string[], options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build first with \`npx tsc -p tsconfig.json\``);
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("ROSTER_")) env[key] = value;
  Object.assign(env, options.env ?? {});
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    // A safety net for a hung command (120 s unless given): a loaded machine takes seconds only to start one.
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs and expects exit 0 with nothing on stderr; returns stdout. */
export async function rosterOk(args: string[], options: Parameters<typeof roster>[1] = {}): Promise<string> {
  const res = await roster(args, options);
  expect(res.stderr, `roster ${args.join(" ")}`).toBe("");
  expect(res.code, `roster ${args.join(" ")}`).toBe(0);
  return res.stdout;
}

export async function rosterJson<T = unknown>(args: string[], options: Parameters<typeof roster>[1] = {}): Promise<T> {
  return JSON.parse(await rosterOk([...args, "--json"], options)) as T;
}

/** Every table's row count, read through the store's SQLite introspection. */
export async function tableCounts(dbPath: string): Promise<Record<string, number>> {
  const store = await openStore({ path: dbPath });
  try {
    return await sqliteTableCounts(store);
  } finally {
    await store.close();
  }
}

/**
 * A database made once by `roster init` (with the bundled personas in
 * `personas/`), copied for each test so tests stay independent without paying
 * for an init each.
 */
export interface Template {
  temp: TempDir;
  db: string;
  personasDir: string;
  /** A copy of the template database in a fresh folder of its own. */
  copy(): { dir: string; db: string; cleanup(): void };
  cleanup(): void;
}

export async function makeTemplate(): Promise<Template> {
  const temp = makeTempDir("roster-cli-template-");
  await rosterOk(["init", "--db", temp.path("roster.db"), "--personas", temp.path("personas")], { cwd: temp.dir });
  const copies: TempDir[] = [];
  return {
    temp,
    db: temp.path("roster.db"),
    personasDir: temp.path("personas"),
    copy() {
      const own = makeTempDir("roster-cli-");
      copies.push(own);
      // init closed its connection, so the WAL was checkpointed into the main file.
      copyFileSync(temp.path("roster.db"), own.path("roster.db"));
      return { dir: own.dir, db: own.path("roster.db"), cleanup: own.cleanup };
    },
    cleanup() {
      for (const own of copies) own.cleanup();
      temp.cleanup();
    },
  };
}
