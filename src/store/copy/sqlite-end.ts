import type Database from "better-sqlite3";
import { randomBytes } from "node:crypto";
import { linkSync, renameSync, rmSync, statSync, unlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { RosterError, coerceError } from "../../errors.js";
import { BUDGET_WINDOWS } from "../economics.js";
import { translateSqliteError, type Db } from "../sqlite/database.js";
import { defaultMigrationsDir } from "../migration-files.js";
import { openDatabase } from "../sqlite/open.js";
import type { CopySource, CopyTarget, LiveAgent } from "./ends.js";
import { kindOf, type TableInfo } from "./tables.js";

/** A batch read from SQLite ends early once its text passes this many characters, so rows with large results do not pile up. */
export const BATCH_CHARS_MAX = 8 * 1024 * 1024;

const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/** Reads the catalog of an open SQLite database. Table names come from sqlite_master; identifiers cannot be bound. */
function sqliteTables(db: Db): Map<string, TableInfo> {
  const names = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
  const out = new Map<string, TableInfo>();
  for (const name of names) {
    const columns = db.prepare(`SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid`).all(name) as Array<{ name: string; type: string; pk: number }>;
    out.set(name, {
      name,
      columns: columns.map((c) => ({ name: c.name, type: c.type, kind: kindOf(c.type), identity: false })),
      primaryKey: columns
        .filter((c) => c.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((c) => c.name),
    });
  }
  return out;
}

const RECOUNT_CONCURRENCY_KEYS_SQL = `
  UPDATE concurrency_keys SET running = (
    SELECT count(*) FROM task_keys tk JOIN task_status s ON s.task_id = tk.task_id
     WHERE tk.key = concurrency_keys.key AND s.status IN ('claimed','in_progress'))`;

/**
 * The running totals src/store/sqlite/usage.ts keeps per attempt (record()), summed
 * at once from the usage rows: task and goal for all time; persona, provider and
 * overall for all time and per hour and day window. Tokens are input + output +
 * cache read + cache write (totalTokens); an unpriced attempt adds no cost.
 */
const REBUILD_SPEND_SQL = `
  INSERT INTO spend (scope, key, window_ms, window_start, tokens, cost_usd)
  WITH u AS (
    SELECT task_id, root_id, persona_id, provider, at,
           input_tokens + output_tokens + cache_read_tokens + cache_write_tokens AS tokens, coalesce(cost_usd, 0) AS cost
      FROM usage),
  w(window_ms) AS (VALUES (0), (${BUDGET_WINDOWS.hour}), (${BUDGET_WINDOWS.day})),
  uw AS (SELECT u.*, w.window_ms, CASE w.window_ms WHEN 0 THEN 0 ELSE (u.at / w.window_ms) * w.window_ms END AS window_start FROM u, w)
  SELECT 'task', CAST(task_id AS TEXT), 0, 0, sum(tokens), sum(cost) FROM u GROUP BY task_id
  UNION ALL SELECT 'goal', CAST(root_id AS TEXT), 0, 0, sum(tokens), sum(cost) FROM u GROUP BY root_id
  UNION ALL SELECT 'persona', persona_id, window_ms, window_start, sum(tokens), sum(cost) FROM uw GROUP BY persona_id, window_ms, window_start
  UNION ALL SELECT 'provider', provider, window_ms, window_start, sum(tokens), sum(cost) FROM uw GROUP BY provider, window_ms, window_start
  UNION ALL SELECT 'global', '', window_ms, window_start, sum(tokens), sum(cost) FROM uw GROUP BY window_ms, window_start`;

/** Where the path given as `flag` cannot be a database file: a folder, or a folder that does not exist. */
function assertFileInFolder(flag: string, path: string): void {
  let folder;
  try {
    folder = statSync(dirname(path));
  } catch {
    throw new RosterError("DATABASE_PATH_INVALID", `${flag} ${path}: folder ${dirname(path)} does not exist`, { retryable: false, details: { field: flag, path } });
  }
  if (!folder.isDirectory()) {
    throw new RosterError("DATABASE_PATH_INVALID", `${flag} ${path}: ${dirname(path)} is not a folder`, { retryable: false, details: { field: flag, path } });
  }
}

/** A RosterError from opening, named after the flag that gave the path. */
function underFlag(flag: string, error: unknown): Error {
  const e = coerceError(error);
  return e instanceof RosterError ? new RosterError(e.code, `${flag} ${e.message}`, { cause: e, retryable: false, details: e.details }) : e;
}

/**
 * The SQLite file to copy from, opened read-only (checked as every read-only
 * command checks it: a roster database, migrated, not newer than this roster), and
 * one read transaction held from the first read to close(): under WAL every row
 * comes from one snapshot while supervisors may go on writing.
 */
export function openSqliteSource(path: string, options: { now: number; busyTimeoutMs: number }): CopySource {
  const flag = "--from";
  let stats;
  try {
    stats = statSync(path);
  } catch {
    assertFileInFolder(flag, path);
    throw new RosterError("VALIDATION", `${flag} ${path}: no such file; name the roster database to copy`, { retryable: false, details: { field: flag, path } });
  }
  if (stats.isDirectory()) throw new RosterError("DATABASE_PATH_INVALID", `${flag} ${path}: is a folder, not a database file`, { retryable: false, details: { field: flag, path } });
  if (stats.size === 0) throw new RosterError("VALIDATION", `${flag} ${path}: is an empty file, not a roster database`, { retryable: false, details: { field: flag, path } });
  let db: Db;
  try {
    db = openDatabase({ path, readonly: true, synchronous: "NORMAL", busyTimeoutMs: options.busyTimeoutMs, migrationsDir: defaultMigrationsDir(), now: options.now });
  } catch (error) {
    throw underFlag(flag, error);
  }
  try {
    db.exec("BEGIN");
    db.prepare("SELECT count(*) FROM schema_migrations").get(); // The snapshot starts with the first read.
  } catch (error) {
    db.close();
    throw underFlag(flag, translateSqliteError(error, `${path}: reading`, path));
  }
  const read = <T>(what: string, body: () => T): T => {
    try {
      return body();
    } catch (error) {
      throw translateSqliteError(error, `${flag} ${path}: reading ${what}`, path);
    }
  };
  return {
    label: path,
    tables: async () => read("the schema", () => sqliteTables(db)),
    count: async (table) => read(table, () => db.prepare(`SELECT count(*) FROM ${quote(table)}`).pluck().get() as number),
    live: async (now) =>
      read("agents", () => {
        const agents = db
          .prepare(
            `SELECT id, kind, hostname, pid, last_heartbeat AS lastHeartbeat, last_heartbeat + heartbeat_timeout_ms AS aliveUntil FROM agents
              WHERE status = 'active' AND last_heartbeat + heartbeat_timeout_ms > ? ORDER BY last_heartbeat DESC`,
          )
          .all(now) as LiveAgent[];
        const leases = db
          .prepare("SELECT count(*) AS n, max(lease_expires_at) AS until FROM task_status WHERE status IN ('claimed','in_progress') AND lease_expires_at > ?")
          .get(now) as { n: number; until: number | null };
        return { at: now, agents, leases: leases.n, leasesUntil: leases.until };
      }),
    async *batches(table, columns, rows) {
      const order = table.primaryKey.length > 0 ? table.primaryKey.map(quote).join(", ") : "rowid";
      const statement = db.prepare(`SELECT ${columns.map(quote).join(", ")} FROM ${quote(table.name)} ORDER BY ${order}`).raw(true);
      let batch: unknown[][] = [];
      let chars = 0;
      let iterator;
      try {
        iterator = statement.iterate() as IterableIterator<unknown[]>;
      } catch (error) {
        throw translateSqliteError(error, `${flag} ${path}: reading ${table.name}`, path);
      }
      for (const row of iterator) {
        batch.push(row);
        for (const value of row) if (typeof value === "string") chars += value.length;
        if (batch.length >= rows || chars >= BATCH_CHARS_MAX) {
          yield batch;
          batch = [];
          chars = 0;
        }
      }
      if (batch.length > 0) yield batch;
    },
    close: async () => {
      if (!db.open) return;
      try {
        db.exec("COMMIT");
      } finally {
        db.close();
      }
    },
  };
}

/**
 * A new SQLite file to copy into. The copy never writes into an existing file: it
 * makes the database beside it under a hidden temporary name (migrated by the
 * ordinary open), fills it in one transaction, and only after the commit links it
 * to `path`, which must still not exist. Any failure removes the temporary file,
 * so `path` either holds the whole copy or nothing at all.
 */
export function createSqliteTarget(path: string, options: { now: number; busyTimeoutMs: number }): CopyTarget {
  const flag = "--to";
  assertNoFile(path);
  assertFileInFolder(flag, path);
  const temp = join(dirname(path), `.${basename(path)}.copy-${process.pid}-${randomBytes(4).toString("hex")}`);
  const removeTemp = () => {
    for (const suffix of ["", "-wal", "-shm", "-journal"]) rmSync(`${temp}${suffix}`, { force: true });
  };
  let db: Db;
  try {
    db = openDatabase({ path: temp, readonly: false, synchronous: "NORMAL", busyTimeoutMs: options.busyTimeoutMs, migrationsDir: defaultMigrationsDir(), now: options.now });
    db.exec("BEGIN IMMEDIATE");
  } catch (error) {
    removeTemp();
    throw underFlag(flag, error);
  }
  const statements = new Map<string, Database.Statement<unknown[]>>();
  const write = <T>(what: string, body: () => T): T => {
    try {
      return body();
    } catch (error) {
      throw translateSqliteError(error, `${flag} ${path}: writing ${what}`, path);
    }
  };
  return {
    label: path,
    tables: async () => write("the schema", () => sqliteTables(db)),
    count: async (table) => write(table, () => db.prepare(`SELECT count(*) FROM ${quote(table)}`).pluck().get() as number),
    insert: async (table, columns, rows, merge) => {
      const key = `${table.name}\u0000${columns.join(",")}\u0000${String(merge)}`;
      let statement = statements.get(key);
      if (statement === undefined) {
        const names = columns.map(quote).join(", ");
        const upsert =
          merge && table.primaryKey.length > 0
            ? ` ON CONFLICT (${table.primaryKey.map(quote).join(", ")}) DO UPDATE SET ${columns
                .filter((c) => !table.primaryKey.includes(c))
                .map((c) => `${quote(c)} = excluded.${quote(c)}`)
                .join(", ")}`
            : "";
        statement = db.prepare<unknown[]>(`INSERT INTO ${quote(table.name)} (${names}) VALUES (${columns.map(() => "?").join(", ")})${upsert}`);
        statements.set(key, statement);
      }
      const run = statement;
      write(table.name, () => {
        for (const row of rows) run.run(...row);
      });
    },
    advanceIdentity: async () => ({}), // An INTEGER PRIMARY KEY takes max(id) + 1 by itself.
    finish: async () => {
      // The triggers of migrations/0006 made a key per keyed task; those already leased went in leased, so count them now.
      write("concurrency_keys", () => db.exec(RECOUNT_CONCURRENCY_KEYS_SQL));
      // A source without spend totals (PostgreSQL has none yet): sum them from the copied usage, as each record() would have.
      write("spend", () => {
        if (db.prepare("SELECT count(*) FROM spend").pluck().get() === 0) db.exec(REBUILD_SPEND_SQL);
      });
    },
    commit: async () => {
      try {
        write("the copy", () => db.exec("COMMIT"));
        db.close();
        placeFile(temp, path);
      } catch (error) {
        if (db.open) db.close();
        removeTemp();
        throw error;
      }
    },
    abort: async () => {
      try {
        if (db.open) {
          if (db.inTransaction) db.exec("ROLLBACK");
          db.close();
        }
      } catch {
        // Closing a connection whose file is about to be removed: nothing of it is kept either way.
      }
      removeTemp();
    },
  };
}

function assertNoFile(path: string): void {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    return;
  }
  if (stats.isDirectory()) throw new RosterError("DATABASE_PATH_INVALID", `--to ${path}: is a folder; name a new database file in it`, { retryable: false, details: { field: "--to", path } });
  throw new RosterError(
    "TARGET_NOT_EMPTY",
    `--to ${path}: a file is already there; a copy into SQLite makes a new database file and never writes into an existing one (move it away or name another file)`,
    { retryable: false, details: { field: "--to", path } },
  );
}

/** Moves the finished file to `path` only if nothing appeared there meanwhile (a hard link fails on an existing name). */
function placeFile(temp: string, path: string): void {
  try {
    linkSync(temp, path);
    unlinkSync(temp);
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") assertNoFile(path);
    // A file system without hard links: check, then rename (a file created in between would be replaced).
    assertNoFile(path);
    renameSync(temp, path);
  }
}
