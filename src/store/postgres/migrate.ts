import { existsSync } from "node:fs";
import { join } from "node:path";
import type pg from "pg";
import { RosterError } from "../../errors.js";
import { defaultMigrationsDir, readMigrations, type MigrationFile } from "../migration-files.js";
import { PG_MIGRATION_TIMEOUT_MS, redactUrl, translatePgError } from "./connection.js";

/**
 * The PostgreSQL store's migrations (migrations/postgres/NNNN_name.sql, recorded with
 * checksums in schema_migrations as SQLite's are), split from database.ts by concern.
 */

/** migrations/postgres/ next to the SQLite ones. */
export function defaultPostgresMigrationsDir(): string {
  const dir = join(defaultMigrationsDir(), "postgres");
  if (!existsSync(join(dir, "0001_init.sql"))) throw new RosterError("INTERNAL", `cannot find roster's PostgreSQL migrations in ${dir}`);
  return dir;
}

/** Advisory lock key of roster's migrations, per schema (two rosters in two schemas migrate independently). */
const MIGRATION_LOCK_SQL = "SELECT pg_advisory_lock(hashtext('roster:migrations:' || coalesce(current_schema(), '')))";
const MIGRATION_UNLOCK_SQL = "SELECT pg_advisory_unlock(hashtext('roster:migrations:' || coalesce(current_schema(), '')))";

/**
 * Applies migrations/postgres/NNNN_*.sql the database lacks, under a session advisory
 * lock so supervisors starting at once migrate once (the others wait, then find
 * nothing to do). Refuses, as SQLite does, a schema holding another program's
 * tables, an applied migration whose file changed (checksum) or is gone, and a
 * schema newer than this code; read-only opens check and never write.
 */
export async function migratePostgres(pool: pg.Pool, options: { dir: string; readonly: boolean; now: number; url: string }): Promise<{ schema: string }> {
  const files = readMigrations(options.dir);
  const where = redactUrl(options.url);
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw translatePgError(error, "opening the store", options.url);
  }
  let locked = false;
  let lifted = false;
  try {
    const schema = (await client.query<{ s: string | null }>("SELECT current_schema() AS s")).rows[0]!.s;
    if (schema === null) {
      throw new RosterError("DATABASE_INVALID", `${where}: no schema to create roster's tables in (the search_path names none that exists)`, { retryable: false });
    }
    if (!options.readonly) {
      // Migrations keep their own, longer bound (PG_MIGRATION_TIMEOUT_MS): waiting for another
      // host's migration lock or building an index may take longer than the session's own.
      await client.query("SET lock_timeout = 0; SET statement_timeout = 0");
      lifted = true;
      await client.query({ text: MIGRATION_LOCK_SQL, query_timeout: PG_MIGRATION_TIMEOUT_MS } as pg.QueryConfig);
      locked = true;
    }
    const { applied, missing } = await migrationsLacking(client, files, where, schema);
    if (applied.length === 0 && options.readonly) {
      throw new RosterError("DATABASE_INVALID", `${where}: not a roster database (no schema_migrations in schema ${schema}); run \`roster init\` first`, { retryable: false });
    }
    if (missing.length === 0) return { schema };
    if (options.readonly) throw new RosterError("DATABASE_READONLY", `${where}: needs migration ${missing[0]!.name} but was opened read-only`, { retryable: false });
    await client.query("BEGIN");
    try {
      await client.query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at bigint NOT NULL)",
      );
      for (const file of missing) {
        await client.query({ text: file.sql, query_timeout: PG_MIGRATION_TIMEOUT_MS } as pg.QueryConfig);
        await client.query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)", [file.version, file.name, file.checksum, options.now]);
      }
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    }
    return { schema };
  } catch (error) {
    throw translatePgError(error, `opening ${where}`, options.url);
  } finally {
    if (locked) await client.query(MIGRATION_UNLOCK_SQL).catch(() => {});
    // Back to the session's settings (RESET returns to the connection's startup options) before the pool lends it out.
    let reset = !lifted;
    if (lifted) reset = await client.query("RESET lock_timeout; RESET statement_timeout").then(() => true, () => false);
    client.release(reset ? undefined : true);
  }
}

/**
 * What the current schema holds, judged against this roster's migration files (for
 * migratePostgres and db copy's target, the same refusals and codes): another program's
 * tables (DATABASE_INVALID), a newer roster's schema (DATABASE_TOO_NEW), an applied
 * migration whose file is gone or was edited (MIGRATION_CHANGED). Returns the applied rows
 * and the files not applied yet, in order.
 */
export async function migrationsLacking(
  client: pg.PoolClient,
  files: MigrationFile[],
  where: string,
  schema: string,
): Promise<{ applied: Array<{ version: number; name: string; checksum: string }>; missing: MigrationFile[] }> {
  const tables = (await client.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema()")).rows.map((r) => r.t);
  if (tables.length > 0 && !tables.includes("schema_migrations")) {
    throw new RosterError("DATABASE_INVALID", `${where}: schema ${schema} holds tables that are not roster's (${tables.slice(0, 3).join(", ")}) and no schema_migrations table`, {
      retryable: false,
    });
  }
  const applied = tables.includes("schema_migrations")
    ? (await client.query<{ version: number; name: string; checksum: string }>("SELECT version, name, checksum FROM schema_migrations ORDER BY version")).rows
    : [];
  const latest = files.at(-1)?.version ?? 0;
  const newest = applied.at(-1);
  if (newest !== undefined && newest.version > latest) {
    throw new RosterError("DATABASE_TOO_NEW", `${where}: schema version ${newest.version} (${newest.name}) is newer than this roster knows (${latest}); upgrade roster`, { retryable: false });
  }
  const byVersion = new Map(files.map((f) => [f.version, f]));
  for (const row of applied) {
    const file = byVersion.get(row.version);
    if (file === undefined) throw new RosterError("MIGRATION_CHANGED", `${where}: applied migration ${row.name} has no file in migrations/postgres/`, { retryable: false });
    if (file.checksum !== row.checksum) {
      throw new RosterError(
        "MIGRATION_CHANGED",
        `migrations/postgres/${file.name} was changed after it was applied to ${where} (checksum ${file.checksum.slice(0, 12)} ≠ recorded ${row.checksum.slice(0, 12)}); add a new migration instead of editing a shipped one`,
        { retryable: false },
      );
    }
  }
  const done = new Set(applied.map((r) => r.version));
  return { applied, missing: files.filter((f) => !done.has(f.version)) };
}
