/**
 * What `roster db copy` copies, in which order, and what it leaves out on purpose
 * (issue 19, deliverable 6). Both schemas (migrations/*.sql, migrations/postgres/*.sql)
 * use the same table and column names, so a table is copied when both ends have it,
 * column by column where both have the column; test/store/copy-tables.test.ts fails
 * when a migration adds a table that is in none of the lists below.
 */

/** A column as the copy sees it: its name, and the kind that decides how a value is converted. */
export interface ColumnInfo {
  name: string;
  /** The declared type (TEXT, bigint, double precision …), as the catalog spells it. */
  type: string;
  kind: "integer" | "real" | "text" | "boolean";
  /** PostgreSQL: an identity column, whose sequence the copy moves past the copied ids. */
  identity: boolean;
}

export interface TableInfo {
  name: string;
  columns: ColumnInfo[];
  /** Primary key columns in key order: rows are read in this order (a parent task before its children). */
  primaryKey: string[];
}

export interface TableSpec {
  name: string;
  /**
   * Rows may already be on the target (a `roster init` there synced the personas):
   * the source's row replaces the target's of the same key. Every other table must
   * be empty on the target (TARGET_NOT_EMPTY).
   */
  merge?: boolean;
  /**
   * A SQLite target makes these rows itself with triggers as the tasks go in
   * (migrations/0006): the copy leaves them to it and recounts what is running.
   */
  sqliteDerives?: boolean;
  /** A target without this table keeps what it says another way (said here): not reported as lost. */
  keptElsewhere?: string;
}

/**
 * Copied, in this order: referenced rows before the rows that reference them
 * (personas → tasks → dependencies, agents, requests, events, usage), identity
 * sequences moved past each table's ids as soon as it is copied, and task_status
 * last among the task tables. task_status went last while the approval gate was a
 * trigger on it (migrations/0003, migrations/postgres/0004; now code, called by the
 * store's own writes, never by a copy's inserts), so that a request and event it wrote
 * took ids after the copied ones; the order is kept.
 * The economic tables (issue 16) follow.
 */
export const COPY_TABLES: readonly TableSpec[] = [
  // The database's identity: a copy is the same database moved, and keeps the git work named after it.
  { name: "roster_meta", merge: true },
  { name: "personas", merge: true },
  { name: "model_prices", merge: true },
  { name: "tasks" },
  { name: "task_dependencies" },
  { name: "agents" },
  { name: "human_requests" },
  { name: "task_events" },
  { name: "usage" },
  { name: "schedules" },
  { name: "task_status" },
  { name: "budgets" },
  { name: "budget_holds" },
  { name: "spend" },
  { name: "provider_pauses" },
  { name: "breakers" },
  { name: "breaker_windows" },
  { name: "rate_windows" },
  { name: "concurrency_keys", merge: true, sqliteDerives: true },
  {
    name: "task_keys",
    merge: true,
    sqliteDerives: true,
    keptElsewhere: "PostgreSQL keeps each task's concurrency key on its task_status row, set by the copy from the task's policy",
  },
];

/** Tables each database keeps for itself: never copied, never reported. */
export const OWN_TABLES: Readonly<Record<string, string>> = {
  schema_migrations: "each database records the migrations applied to it",
  task_counts: "SQLite keeps it from task_status with triggers, so the copied rows count themselves",
  persona_room_waits: "PostgreSQL's note of claimants waiting for a persona's room, live state of the hosts connected now (migrations/postgres/0009)",
};

/**
 * Columns one schema has and the other keeps another way: not reported as lost.
 * The concurrency key of a task and a key's running count are derived on each side
 * (migrations/0006 on SQLite: task_keys and a running counter kept by triggers;
 * migrations/postgres/0005: task_status.concurrency_key, running counted from the
 * leased rows), from the task's policy, which is copied.
 */
export const DERIVED_COLUMNS: ReadonlySet<string> = new Set(["task_status.concurrency_key", "concurrency_keys.running"]);

/** The kind of a declared column type, from either catalog. */
export function kindOf(type: string): ColumnInfo["kind"] {
  const t = type.toLowerCase();
  if (t === "boolean" || t === "bool") return "boolean";
  if (t.includes("int")) return "integer";
  if (t.includes("real") || t.includes("double") || t.includes("numeric") || t.includes("float")) return "real";
  return "text";
}

/**
 * One value read from `from`, as the `to` column takes it: PostgreSQL's boolean is
 * SQLite's 0/1 (personas.file_present); everything else (integers, floats, JSON kept
 * as text, exactly as written) goes across as it is.
 */
export function convertValue(value: unknown, from: ColumnInfo, to: ColumnInfo): unknown {
  if (value === null || value === undefined) return null;
  if (to.kind === "boolean" && from.kind !== "boolean") return value !== 0 && value !== "0" && value !== false;
  if (to.kind !== "boolean" && from.kind === "boolean") return value === true ? 1 : 0;
  return value;
}
