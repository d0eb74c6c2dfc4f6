/**
 * Opening a database file: the path checked before anything touches it, an existing file
 * inspected by a connection that writes nothing, then the working connection (WAL, pragmas,
 * migrations); the whole open retried while another connection's write lock outlasts busy_timeout.
 */
import Database from "better-sqlite3";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { RosterError, coerceError } from "../../errors.js";
import { BUSY_RETRIES_DEFAULT, busyRetryDelayMs, translateSqliteError, type Db } from "./database.js";
import { defaultMigrationsDir, readMigrations } from "../migration-files.js";
import { assertRosterOrEmpty, checkMigrations, runMigrations } from "./migrate.js";

/**
 * WAL pages a commit may leave before it checkpoints them into the database file
 * (wal_autocheckpoint; SQLite's default is 1,000): 10,000 pages of 4 KiB, a WAL of up to about
 * 40 MiB. Under synchronous=NORMAL a checkpoint is where the fsyncs are (the WAL's, then the
 * file's): with a one-task claim and completion writing 12 pages, the default made a checkpoint
 * every ~80 tasks, and its two fsyncs took 4.8 ms on average on this machine under load
 * (strace), ~120 us a task. Ten times fewer checkpoints, each writing a page rewritten many
 * times (task_counts, the tail of task_events) once. Readers find pages in the WAL through its
 * hash index, whatever its length; a crash replays at most this much.
 */
export const WAL_AUTOCHECKPOINT_PAGES = 10_000;

export interface OpenOptions {
  path: string;
  synchronous: "NORMAL" | "FULL";
  busyTimeoutMs: number;
  readonly: boolean;
  migrationsDir: string;
  now: number;
  /** Extra attempts at the whole open when the write lock outlasts busy_timeout. Default BUSY_RETRIES_DEFAULT. */
  busyRetries?: number;
  /** Called before each of those extra attempts (1-based). */
  onBusyRetry?: ((attempt: number) => void) | undefined;
}

/**
 * The file at `path` before anything opens it: its size, or null when there is
 * none yet (its folder exists). A path that cannot hold a database (a folder; a
 * folder that does not exist; a file where a folder should be) is refused with
 * DATABASE_PATH_INVALID naming the part that is wrong.
 */
function statDatabasePath(path: string): { size: number } | null {
  let stats;
  try {
    stats = statSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "ENOTDIR") throw translateFsError(error, path);
    assertFolder(path);
    return null;
  }
  if (stats.isDirectory()) {
    throw new RosterError("DATABASE_PATH_INVALID", `${path}: is a folder, not a database file; name a file in it, such as ${join(path, "roster.db")}`, {
      retryable: false,
      details: { path },
    });
  }
  return { size: stats.size };
}

/** The folder a new database file would go in must exist and be a folder. */
function assertFolder(path: string): void {
  // From the file's folder upward, the first part that exists says what is wrong.
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    let stats;
    try {
      stats = statSync(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" && dirname(dir) !== dir) continue;
      if (code === "ENOTDIR" && dirname(dir) !== dir) continue;
      throw translateFsError(error, path);
    }
    if (stats.isDirectory()) {
      if (dir === dirname(path)) return;
      throw new RosterError("DATABASE_PATH_INVALID", `${path}: cannot create the database: folder ${dirname(path)} does not exist; create it or pass another path`, {
        retryable: false,
        details: { path },
      });
    }
    throw new RosterError("DATABASE_PATH_INVALID", `${path}: cannot create the database: ${dir} is a file, not a folder`, { retryable: false, details: { path } });
  }
}

function translateFsError(error: unknown, path: string): RosterError {
  const e = coerceError(error);
  return new RosterError("DATABASE_PATH_INVALID", `${path}: cannot use this path for the database (${e.message})`, { cause: e, retryable: false, details: { path } });
}

/** Blocks the thread for `ms`: opening is synchronous, as busy_timeout's own waiting is. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Opens the database, retrying the whole open (with the backoff of write
 * transactions) while another connection's write lock outlasts busy_timeout:
 * opening checks the migrations inside BEGIN IMMEDIATE, a write like any other.
 */
export function openDatabase(options: OpenOptions): Db {
  const retries = options.busyRetries ?? BUSY_RETRIES_DEFAULT;
  for (let attempt = 1; ; attempt++) {
    try {
      return openOnce(options);
    } catch (error) {
      if (!(error instanceof RosterError && error.code === "DATABASE_BUSY") || attempt > retries) throw error;
      options.onBusyRetry?.(attempt);
      sleepSync(busyRetryDelayMs(attempt));
    }
  }
}

/**
 * One open. Nothing persistent is written to a file until it has been read and
 * found to be a roster database this code may use (or an empty file): an
 * existing file is first inspected by a connection that only reads (it leaves no
 * -wal or -shm behind when it closes), and only then is the working connection
 * opened, switched to WAL and migrated.
 */
function openOnce(options: OpenOptions): Db {
  const { path } = options;
  const where = `opening ${path}`;
  const onDisk = path !== ":memory:" && path !== "";
  const existing = onDisk ? statDatabasePath(path) : null;
  if (onDisk && existing === null && options.readonly) {
    throw new RosterError("DATABASE_INVALID", `${path}: no roster database there; run \`roster init\` first`, { retryable: false, details: { path } });
  }
  if (existing !== null && existing.size > 0) inspect(options);
  let db: Db;
  try {
    db = new Database(path, { readonly: options.readonly, fileMustExist: options.readonly });
  } catch (error) {
    throw translateSqliteError(error, where, path);
  }
  try {
    db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs)}`);
    // Before the journal-mode switch, which would rewrite another program's file.
    assertRosterOrEmpty(db, path);
    if (!options.readonly) {
      db.pragma("journal_mode = WAL");
      db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    }
    db.pragma(`synchronous = ${options.synchronous}`);
    db.pragma("foreign_keys = ON");
    // Keep temp b-trees (ORDER BY, UNION in recursive CTEs) in memory.
    db.pragma("temp_store = MEMORY");
    runMigrations(db, { dir: options.migrationsDir, readonly: options.readonly, now: options.now, path });
  } catch (error) {
    db.close();
    throw translateSqliteError(error, where, path);
  }
  return db;
}

/**
 * Reads an existing file through a connection of its own and refuses it when it
 * is not SQLite, holds another program's tables, or is a roster database this
 * code may not use (newer, edited migrations; read-only: not migrated). The
 * connection is read-write only so that, closing last, it removes the -wal and
 * -shm files a WAL database needs for reading (a read-only connection leaves
 * them); it writes nothing. Where it cannot open read-write (a read-only folder
 * or file), a read-only open goes on to say why or to serve reads.
 */
function inspect(options: OpenOptions): void {
  const { path } = options;
  const where = `opening ${path}`;
  let db: Db;
  try {
    db = new Database(path, { fileMustExist: true });
  } catch (error) {
    const translated = translateSqliteError(error, where, path);
    if (options.readonly && translated instanceof RosterError && translated.code === "DATABASE_READONLY") return;
    throw translated;
  }
  try {
    db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs)}`);
    assertRosterOrEmpty(db, path);
    checkMigrations(db, readMigrations(options.migrationsDir), { readonly: options.readonly, path });
  } catch (error) {
    const translated = translateSqliteError(error, where, path);
    if (options.readonly && translated instanceof RosterError && translated.code === "DATABASE_READONLY" && translated.cause !== undefined) return;
    throw translated;
  } finally {
    db.close();
  }
}
