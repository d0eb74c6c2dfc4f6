import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Command } from "commander";
import { configSource, loadConfig, type Config } from "../config.js";
import { RosterError, coerceError } from "../errors.js";
import { isPostgresUrl, openStore, type Store } from "../store/index.js";

/**
 * Option handling every command shares: `--db` everywhere, `--json` on the read
 * commands, `--personas` where persona files matter, integer and id parsing with
 * messages that name the flag, and opening the store. Environment variables are
 * read by loadConfig (src/config.ts) only; flags override them.
 */
export interface DbOptions {
  db?: string;
}
export interface JsonOptions {
  json?: boolean;
}
export interface PersonasOptions {
  personas?: string;
}

export function addDbOption(command: Command): Command {
  return command.option("--db <path>", "SQLite database file (env ROSTER_DB, default ./roster.db)");
}

export function addJsonOption(command: Command): Command {
  return command.option("--json", "print machine-readable JSON on stdout");
}

export function addPersonasOption(command: Command): Command {
  return command.option("--personas <dir>", "folder of persona files (env ROSTER_PERSONAS, default ./personas)");
}

type ConfigFlags = Parameters<typeof loadConfig>[0];

/** The flag that sets each config field, so a value the schema refuses is reported under its flag. */
export const CONFIG_FLAG_NAMES: Readonly<Record<string, string>> = {
  dbPath: "--db",
  personasDir: "--personas",
  logLevel: "--log-level",
  synchronous: "--synchronous",
  concurrency: "--concurrency",
  threads: "--threads",
  "metrics.port": "--metrics-port",
  "metrics.host": "--metrics-host",
  "mcp.port": "--mcp-port",
  "mcp.host": "--mcp-host",
  "mcp.token": "--mcp-token",
  "mcp.profile": "--mcp-profile",
  "mcp.workerToken": "--mcp-worker-token",
  "mcp.plannerToken": "--mcp-planner-token",
};

/** Defaults ← environment ← these flags (see loadConfig). */
export function configFrom(options: DbOptions & PersonasOptions, flags: ConfigFlags = {}): Config {
  const input: ConfigFlags = { ...flags };
  if (options.db !== undefined) input.dbPath = options.db;
  if (options.personas !== undefined) input.personasDir = options.personas;
  return loadConfig(input, undefined, { flagNames: CONFIG_FLAG_NAMES });
}

/**
 * How a message names a config value at fault: `--db x.db` from the flag,
 * `ROSTER_DB=x.db` from the variable (configSource), and a default by its flag,
 * which is how to give another.
 */
export function configValueLabel(config: Config, key: "dbPath" | "personasDir"): string {
  const value = config[key];
  const source = configSource(config, key) ?? CONFIG_FLAG_NAMES[key]!;
  return source.startsWith("--") ? `${source} ${value}` : `${source}=${value}`;
}

/**
 * For every command but those that may create a database (init, start, run,
 * mcp): refuses, before anything opens it, a --db path where there is no roster
 * database to use: no file (VALIDATION, the hint to run init), an empty file
 * (the same: init makes a database there), a folder, or a folder that does not
 * exist (DATABASE_PATH_INVALID). So a read, or a mistyped --db, never creates a
 * file or turns an empty one into a database.
 */
export function assertDatabaseThere(config: Config): void {
  const dbPath = config.dbPath;
  // A PostgreSQL URL is checked when it opens (a schema without roster's tables is refused read-only, migrated otherwise).
  if (dbPath === ":memory:" || isPostgresUrl(dbPath)) return;
  const label = configValueLabel(config, "dbPath");
  let stats;
  try {
    stats = statSync(dbPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const folder = dirname(dbPath);
    if (code === "ENOTDIR" || (code === "ENOENT" && !isFolder(folder))) {
      const what = existsSync(folder) || code === "ENOTDIR" ? `${firstFile(folder)} is a file, not a folder` : `folder ${folder} does not exist`;
      throw new RosterError("DATABASE_PATH_INVALID", `${label}: no roster database there: ${what}`, { details: { field: "db", path: dbPath } });
    }
    if (code === "ENOENT") {
      throw new RosterError("VALIDATION", `${label}: no roster database there; run \`roster init\` first, or pass --db / set ROSTER_DB`, {
        details: { field: "db", path: dbPath },
      });
    }
    throw new RosterError("DATABASE_PATH_INVALID", `${label}: cannot use this path (${coerceError(error).message})`, {
      cause: error,
      details: { field: "db", path: dbPath },
    });
  }
  if (stats.isDirectory()) {
    throw new RosterError("DATABASE_PATH_INVALID", `${label}: is a folder, not a database file; name a file in it, such as ${join(dbPath, "roster.db")}`, {
      details: { field: "db", path: dbPath },
    });
  }
  if (stats.size === 0) {
    throw new RosterError("VALIDATION", `${label}: is an empty file, not a roster database; run \`roster init --db ${dbPath}\` to make one there`, {
      details: { field: "db", path: dbPath },
    });
  }
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // Missing, or under a file: either way not a folder.
  }
}

/** The part of `path` that is a file where a folder should be (the nearest existing ancestor). */
function firstFile(path: string): string {
  let dir = path;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/**
 * Opens the store for one command and closes it afterwards. `existing` refuses a
 * path with no roster database (assertDatabaseThere); `create` is for init and
 * the commands that run work (start, run), which make one where there is none.
 */
export async function withStore<T>(config: Config, mode: "existing" | "create", fn: (store: Store) => Promise<T>): Promise<T> {
  if (mode === "existing") assertDatabaseThere(config);
  const store = await openStore({
    path: config.dbPath,
    synchronous: config.synchronous,
    busyTimeoutMs: config.busyTimeoutMs,
    maxPayloadBytes: config.maxPayloadBytes,
  });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** An integer flag value within bounds, or a VALIDATION error naming the flag. */
export function parseInteger(flag: string, raw: string, bounds: { min?: number; max?: number } = {}): number {
  const text = raw.trim();
  const value = /^[+-]?\d+$/.test(text) ? Number(text) : Number.NaN;
  const { min, max } = bounds;
  const range =
    min !== undefined && max !== undefined ? ` from ${min} to ${max}` : min !== undefined ? ` >= ${min}` : max !== undefined ? ` <= ${max}` : "";
  if (!Number.isSafeInteger(value) || (min !== undefined && value < min) || (max !== undefined && value > max)) {
    throw new RosterError("VALIDATION", `${flag}: must be an integer${range}, got "${raw}"`, { details: { field: flag } });
  }
  return value;
}

/** A task id argument: a positive integer. */
export function parseTaskId(raw: string, what = "task id"): number {
  const text = raw.trim();
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RosterError("VALIDATION", `${what}: must be a positive integer, got "${raw}"`, { details: { field: what } });
  }
  return value;
}

/** A comma-separated list of task ids (`--depends-on 1,2`). */
export function parseIdList(flag: string, raw: string): number[] {
  const parts = raw.split(",").map((part) => part.trim());
  if (parts.some((part) => part === "")) {
    throw new RosterError("VALIDATION", `${flag}: must be task ids separated by commas, got "${raw}"`, { details: { field: flag } });
  }
  return parts.map((part) => parseTaskId(part, flag));
}

const DURATION = /^(\d+)(ms|s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/**
 * The longest duration a flag takes, in ms: 100,000,000 days (some 273,790 years), the
 * span a JavaScript Date covers on either side of 1970, so `now - duration` is still a
 * date (`prune` prints its cut as one).
 */
export const DURATION_MAX_MS = 8_640_000_000_000_000;

/**
 * `7d`, `12h`, `30m`, `45s`, `500ms`, `2w` → milliseconds. A well-formed duration
 * past DURATION_MAX_MS is refused as too long, with the limit in its own unit.
 */
export function parseDuration(flag: string, raw: string): number {
  const text = raw.trim();
  if (text === "0") return 0;
  const match = DURATION.exec(text);
  if (match === null) {
    throw new RosterError("VALIDATION", `${flag}: must be a duration such as 7d, 12h, 30m, 45s or 500ms, got "${raw}"`, {
      details: { field: flag },
    });
  }
  const unit = match[2]!;
  const ms = Number(match[1]) * UNIT_MS[unit]!;
  if (ms > DURATION_MAX_MS) {
    const most = Math.floor(DURATION_MAX_MS / UNIT_MS[unit]!);
    throw new RosterError("VALIDATION", `${flag}: too long, at most ${most}${unit}, got "${raw}"`, { details: { field: flag } });
  }
  return ms;
}
