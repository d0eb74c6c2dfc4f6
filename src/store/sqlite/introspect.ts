import { RosterError } from "../../errors.js";
import type { Store } from "../types.js";
import type { Db } from "./database.js";
import { HOT_QUERIES, type HotQueryName } from "./hot-queries.js";

/**
 * SQLite-only introspection for tests and benchmarks: row counts of every table
 * and EXPLAIN QUERY PLAN of the store's own hot statements (the exact text the
 * store prepares, never a copy). Not part of the Store interface; nothing in the
 * runtime path imports this.
 */
const handles = new WeakMap<Store, Db>();

/** Called by SqliteStore's constructor. */
export function registerSqliteHandle(store: Store, db: Db): void {
  handles.set(store, db);
}

function handleOf(store: Store): Db {
  const db = handles.get(store);
  if (db === undefined) throw new RosterError("INTERNAL", "not a SQLite store (introspection needs the store openStore returned)");
  return db;
}

/** Whether this store is the SQLite implementation. */
export function isSqliteStore(store: Store): boolean {
  return handles.has(store);
}

/** table name → row count, for every table of the schema (sqlite_% excluded). */
export function sqliteTableCounts(store: Store): Record<string, number> {
  const db = handleOf(store);
  const names = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .pluck()
    .all() as string[];
  const out: Record<string, number> = {};
  // Table names come from sqlite_master, not from input; identifiers cannot be bound.
  for (const name of names) out[name] = db.prepare(`SELECT count(*) FROM "${name.replaceAll('"', '""')}"`).pluck().get() as number;
  return out;
}

/** The `detail` lines of EXPLAIN QUERY PLAN for one of the store's hot statements. */
export function sqliteExplain(store: Store, name: HotQueryName, params: Record<string, unknown> | unknown[]): string[] {
  const db = handleOf(store);
  const rows = db.prepare(`EXPLAIN QUERY PLAN ${HOT_QUERIES[name]}`).all(params) as Array<{ detail: string }>;
  return rows.map((row) => row.detail);
}

/** A pragma's current value on the store's connection (journal_mode, synchronous, foreign_keys …). */
export function sqlitePragma(store: Store, name: "journal_mode" | "synchronous" | "foreign_keys" | "busy_timeout" | "wal_autocheckpoint"): unknown {
  return handleOf(store).pragma(name, { simple: true });
}
