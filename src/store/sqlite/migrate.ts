import type Database from "better-sqlite3";
import { RosterError } from "../../errors.js";
import { readMigrations, type MigrationFile } from "../migration-files.js";

/**
 * Refuses, before anything is written (journal mode included), a file that holds
 * another program's tables. An empty database or a roster one passes. Reading
 * sqlite_master is also what turns a file that is not SQLite into SQLITE_NOTADB.
 */
export function assertRosterOrEmpty(db: Database.Database, path: string): void {
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().all() as string[];
  if (tables.length > 0 && !tables.includes("schema_migrations")) {
    throw new RosterError("DATABASE_INVALID", `${path}: holds tables that are not roster's (${tables.slice(0, 3).join(", ")}) and no schema_migrations table`, {
      retryable: false,
    });
  }
}

/**
 * Reads, and only reads, whether this code may use the database: refuses one
 * whose applied migrations differ from the files (edited after shipping) or that
 * is newer than this code, and (read-only) one that is not a roster database or
 * lacks a migration. Returns the migrations still to apply (none for a roster
 * database that is up to date; all of them for an empty one).
 */
export function checkMigrations(db: Database.Database, files: MigrationFile[], options: { readonly: boolean; path: string }): MigrationFile[] {
  const latest = files.length === 0 ? 0 : files[files.length - 1]!.version;
  const hasTable =
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get() !== undefined;
  if (!hasTable) {
    if (options.readonly) {
      throw new RosterError("DATABASE_INVALID", `${options.path}: not a roster database (no schema_migrations); run \`roster init\` first`, {
        retryable: false,
      });
    }
    assertRosterOrEmpty(db, options.path);
    return files;
  }
  const applied = db.prepare("SELECT version, name, checksum FROM schema_migrations ORDER BY version").all() as Array<{
    version: number;
    name: string;
    checksum: string;
  }>;
  const byVersion = new Map(files.map((file) => [file.version, file]));
  // The newest first: a database from a newer roster is that, whatever else differs.
  const newest = applied.at(-1);
  if (newest !== undefined && newest.version > latest) {
    throw new RosterError(
      "DATABASE_TOO_NEW",
      `${options.path}: schema version ${newest.version} (${newest.name}) is newer than this roster knows (${latest}); upgrade roster`,
      { retryable: false },
    );
  }
  for (const row of applied) {
    const file = byVersion.get(row.version);
    if (file === undefined) {
      throw new RosterError("MIGRATION_CHANGED", `${options.path}: applied migration ${row.name} has no file in migrations/`, { retryable: false });
    }
    if (file.checksum !== row.checksum) {
      throw new RosterError(
        "MIGRATION_CHANGED",
        `migrations/${file.name} was changed after it was applied to ${options.path} (checksum ${file.checksum.slice(0, 12)} ≠ recorded ${row.checksum.slice(0, 12)}); add a new migration instead of editing a shipped one`,
        { retryable: false },
      );
    }
  }
  const done = new Set(applied.map((row) => row.version));
  const missing = files.filter((file) => !done.has(file.version));
  if (missing.length > 0 && options.readonly) {
    throw new RosterError("DATABASE_READONLY", `${options.path}: needs migration ${missing[0]!.name} but was opened read-only`, { retryable: false });
  }
  return missing;
}

/**
 * Applies the migrations a database lacks, in one BEGIN IMMEDIATE with the check,
 * so processes opening a fresh file at the same moment take turns instead of
 * racing to create tables. Refuses what checkMigrations refuses.
 */
export function runMigrations(db: Database.Database, options: { dir: string; readonly: boolean; now: number; path: string }): void {
  const files = readMigrations(options.dir);
  if (options.readonly) {
    checkMigrations(db, files, options);
    return;
  }
  db.transaction(() => {
    const missing = checkMigrations(db, files, options);
    if (missing.length === 0) return;
    if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get() === undefined) {
      db.exec(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT",
      );
    }
    const record = db.prepare("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)");
    for (const file of missing) {
      db.exec(file.sql);
      record.run(file.version, file.name, file.checksum, options.now);
    }
  }).immediate();
}
