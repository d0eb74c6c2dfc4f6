import type pg from "pg";
import { RosterError, coerceError } from "../../errors.js";
import { newPool, redactUrl, translatePgError } from "../postgres/connection.js";
import { defaultPostgresMigrationsDir, migratePostgres, migrationsLacking } from "../postgres/migrate.js";
import { readMigrations } from "../migration-files.js";
import type { CopySource, CopyTarget, LiveAgent } from "./ends.js";
import { kindOf, type TableInfo } from "./tables.js";

const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/** Every ordinary table of the connection's current schema, with its columns, key and identity columns. */
async function postgresTables(client: pg.PoolClient): Promise<Map<string, TableInfo>> {
  const columns = await client.query<{ table: string; column: string; type: string; identity: boolean }>(
    `SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type, a.attidentity <> '' AS identity
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
      WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY c.relname, a.attnum`,
  );
  const keys = await client.query<{ table: string; column: string }>(
    `SELECT c.relname AS table, a.attname AS column
       FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position) ON true
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
      WHERE n.nspname = current_schema() AND i.indisprimary
      ORDER BY c.relname, k.position`,
  );
  const out = new Map<string, TableInfo>();
  for (const row of columns.rows) {
    let table = out.get(row.table);
    if (table === undefined) out.set(row.table, (table = { name: row.table, columns: [], primaryKey: [] }));
    table.columns.push({ name: row.column, type: row.type, kind: kindOf(row.type), identity: row.identity });
  }
  for (const row of keys.rows) out.get(row.table)?.primaryKey.push(row.column);
  return out;
}

function underFlag(flag: string, error: unknown): Error {
  const e = coerceError(error);
  return e instanceof RosterError ? new RosterError(e.code, `${flag} ${e.message}`, { cause: e, retryable: false, details: e.details }) : e;
}

/**
 * The PostgreSQL database to copy from (`--from postgres://…`): checked as a
 * read-only open checks it (a roster schema, migrated, not newer than this roster),
 * then read in one REPEATABLE READ, READ ONLY transaction, so every row comes from
 * one snapshot while supervisors may go on writing. Rows come through a cursor.
 */
export async function openPostgresSource(url: string, options: { now: number }): Promise<CopySource> {
  const flag = "--from";
  const label = redactUrl(url);
  const pool = newPool(url, 1, true);
  let client: pg.PoolClient;
  try {
    await migratePostgres(pool, { dir: defaultPostgresMigrationsDir(), readonly: true, now: options.now, url });
    client = await pool.connect();
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  } catch (error) {
    await pool.end().catch(() => {});
    throw underFlag(flag, translatePgError(error, "opening the store", url));
  }
  const read = async <T>(what: string, body: () => Promise<T>): Promise<T> => {
    try {
      return await body();
    } catch (error) {
      throw translatePgError(error, `${flag} ${label}: reading ${what}`, url);
    }
  };
  let cursors = 0;
  return {
    label,
    tables: () => read("the schema", () => postgresTables(client)),
    count: (table) => read(table, async () => Number((await client.query<{ n: number }>(`SELECT count(*)::bigint AS n FROM ${quote(table)}`)).rows[0]!.n)),
    live: () =>
      read("agents", async () => {
        const now = Number((await client.query<{ now: number }>("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now")).rows[0]!.now);
        const agents = (
          await client.query<LiveAgent>(
            `SELECT id, kind, hostname, pid, last_heartbeat AS "lastHeartbeat", last_heartbeat + heartbeat_timeout_ms AS "aliveUntil" FROM agents
              WHERE status = 'active' AND last_heartbeat + heartbeat_timeout_ms > $1 ORDER BY last_heartbeat DESC`,
            [now],
          )
        ).rows;
        const leases = (
          await client.query<{ n: number; until: number | null }>(
            "SELECT count(*)::bigint AS n, max(lease_expires_at) AS until FROM task_status WHERE status IN ('claimed','in_progress') AND lease_expires_at > $1",
            [now],
          )
        ).rows[0]!;
        return { at: now, agents, leases: Number(leases.n), leasesUntil: leases.until === null ? null : Number(leases.until) };
      }),
    async *batches(table, columns, rows) {
      const cursor = `roster_copy_${++cursors}`;
      const order = table.primaryKey.length > 0 ? ` ORDER BY ${table.primaryKey.map(quote).join(", ")}` : "";
      await read(table.name, () => client.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT ${columns.map(quote).join(", ")} FROM ${quote(table.name)}${order}`));
      for (;;) {
        const batch = await read(table.name, () => client.query<unknown[]>({ text: `FETCH ${Math.trunc(rows)} FROM ${cursor}`, rowMode: "array" }));
        if (batch.rows.length > 0) yield batch.rows;
        if (batch.rows.length < rows) break;
      }
      await read(table.name, () => client.query(`CLOSE ${cursor}`));
    },
    close: async () => {
      await client.query("COMMIT").catch(() => {});
      client.release();
      await pool.end().catch(() => {});
    },
  };
}

/** The lock roster's PostgreSQL migrations take (src/store/postgres/database.ts), here for the length of the copy's transaction. */
const MIGRATION_XACT_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('roster:migrations:' || coalesce(current_schema(), '')))";

/**
 * The PostgreSQL database to copy into (`--to postgres://…`). Everything happens in
 * one transaction on one connection, from the checks to the last row: it takes the
 * migration lock (so a `roster start` opening meanwhile waits for the commit instead
 * of seeing half a copy), checks the schema as opening a store does, applies the
 * migrations it lacks, then takes the copied rows. Any refusal or failure rolls all
 * of it back, migrations included, so a refused target is left as it was. The
 * checks repeat migratePostgres's because that one commits migrations in a
 * transaction of its own, which this copy must not do.
 */
export async function openPostgresTarget(url: string, options: { now: number }): Promise<CopyTarget> {
  const flag = "--to";
  const label = redactUrl(url);
  const pool = newPool(url, 1);
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    await pool.end().catch(() => {});
    throw underFlag(flag, translatePgError(error, "opening the store", url));
  }
  const end = async (commit: boolean) => {
    try {
      await client.query(commit ? "COMMIT" : "ROLLBACK");
    } finally {
      client.release();
      await pool.end().catch(() => {});
    }
  };
  try {
    await client.query("BEGIN");
    await migrateInside(client, { label, now: options.now });
  } catch (error) {
    await end(false).catch(() => {});
    throw underFlag(flag, translatePgError(error, `opening ${label}`, url));
  }
  const write = async <T>(what: string, body: () => Promise<T>): Promise<T> => {
    try {
      return await body();
    } catch (error) {
      const e = translatePgError(error, `${flag} ${label}: writing ${what}`, url);
      if (e instanceof RosterError) throw e;
      throw new RosterError("COPY_ROW_REFUSED", `${flag} ${label}: writing ${what}: ${e.message}`, { cause: e, retryable: false });
    }
  };
  return {
    label,
    tables: () => write("the schema", () => postgresTables(client)),
    count: (table) => write(table, async () => Number((await client.query<{ n: number }>(`SELECT count(*)::bigint AS n FROM ${quote(table)}`)).rows[0]!.n)),
    insert: async (table, columns, rows, merge) => {
      const types = columns.map((c) => table.columns.find((col) => col.name === c)!.type);
      const arrays = columns.map((_, i) => rows.map((row) => row[i]));
      const upsert =
        merge && table.primaryKey.length > 0
          ? ` ON CONFLICT (${table.primaryKey.map(quote).join(", ")}) DO UPDATE SET ${columns
              .filter((c) => !table.primaryKey.includes(c))
              .map((c) => `${quote(c)} = EXCLUDED.${quote(c)}`)
              .join(", ")}`
          : "";
      // One statement per batch, one array parameter per column: no limit on rows per statement.
      const sql = `INSERT INTO ${quote(table.name)} (${columns.map(quote).join(", ")})
                   SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(", ")})${upsert}`;
      await write(describeRows(table, columns, rows), () => client.query(sql, arrays));
    },
    advanceIdentity: (table) =>
      write(`${table.name}'s identity`, async () => {
        const next: Record<string, number> = {};
        for (const column of table.columns.filter((c) => c.identity)) {
          const row = await client.query<{ next: number }>(
            `SELECT setval(pg_get_serial_sequence($1, $2), coalesce(max(${quote(column.name)}), 0) + 1, false) AS next FROM ${quote(table.name)}`,
            [quote(table.name), column.name],
          );
          next[column.name] = Number(row.rows[0]!.next);
        }
        return next;
      }),
    finish: () =>
      write("task_status.concurrency_key", async () => {
        // migrations/postgres/0005: a task's concurrency key lives on its status row, set at enqueue from its policy; SQLite has no such column.
        const status = (await postgresTables(client)).get("task_status");
        if (status?.columns.some((c) => c.name === "concurrency_key") !== true) return;
        await client.query(
          `UPDATE task_status s SET concurrency_key = t.retry_policy::jsonb ->> 'concurrencyKey'
             FROM tasks t WHERE t.id = s.task_id AND s.concurrency_key IS NULL AND t.retry_policy::jsonb ->> 'concurrencyKey' IS NOT NULL`,
        );
      }),
    commit: () => write("the copy (commit)", () => end(true)),
    abort: async () => {
      await end(false).catch(() => {});
    },
  };
}

/** "tasks (ids 1001 to 2000)": which rows a failed batch held, by the first key column. */
function describeRows(table: TableInfo, columns: string[], rows: unknown[][]): string {
  const key = table.primaryKey[0];
  const at = key === undefined ? -1 : columns.indexOf(key);
  if (at < 0 || rows.length === 0) return table.name;
  const first = rows[0]![at];
  const last = rows.at(-1)![at];
  return rows.length === 1 ? `${table.name} (${key} ${String(first)})` : `${table.name} (${key} ${String(first)} to ${String(last)})`;
}

/**
 * Inside the copy's transaction: refuses a schema that holds another program's
 * tables, a newer roster's, or edited migrations (the same refusals as
 * migratePostgres, same codes), and applies the migrations it lacks.
 */
async function migrateInside(client: pg.PoolClient, options: { label: string; now: number }): Promise<void> {
  const { label } = options;
  const schema = (await client.query<{ s: string | null }>("SELECT current_schema() AS s")).rows[0]!.s;
  if (schema === null) throw new RosterError("DATABASE_INVALID", `${label}: no schema to create roster's tables in (the search_path names none that exists)`, { retryable: false });
  await client.query(MIGRATION_XACT_LOCK_SQL);
  const { missing } = await migrationsLacking(client, readMigrations(defaultPostgresMigrationsDir()), label, schema);
  await client.query("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at bigint NOT NULL)");
  for (const file of missing) {
    await client.query(file.sql);
    await client.query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)", [file.version, file.name, file.checksum, options.now]);
  }
}
