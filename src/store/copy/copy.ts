import { RosterError } from "../../errors.js";
import { isPostgresUrl } from "../postgres/connection.js";
import type { CopySource, CopyTarget, LiveAgent, LiveSource } from "./ends.js";
import { openPostgresSource, openPostgresTarget } from "./postgres-end.js";
import { createSqliteTarget, openSqliteSource } from "./sqlite-end.js";
import { COPY_TABLES, DERIVED_COLUMNS, OWN_TABLES, convertValue, type TableInfo, type TableSpec } from "./tables.js";

/** Rows read and written per batch unless told otherwise (`--batch-size`). */
export const COPY_BATCH_ROWS_DEFAULT = 1000;
export const COPY_BATCH_ROWS_MAX = 100_000;

export interface CopyOptions {
  /** A SQLite file or a postgres:// URL; `to` must be the other kind. */
  from: string;
  to: string;
  /** Wall clock (epoch ms): migrations' applied_at, and what counts as a recent heartbeat. */
  now: number;
  batchRows?: number;
  /** Copy even when an agent on the source looks alive (a snapshot; what it does afterwards stays in the source). */
  allowRunning?: boolean;
  /** SQLite: how long to wait for another connection's lock. */
  busyTimeoutMs?: number;
  /** After each batch (and as each table starts, with copied 0). */
  onProgress?: (progress: CopyProgress) => void;
  /** Monotonic ms for the summary's duration. Default performance.now. */
  monotonic?: () => number;
}

export interface CopyProgress {
  table: string;
  copied: number;
  total: number;
}

export interface CopySummary {
  from: string;
  to: string;
  direction: "sqlite-to-postgres" | "postgres-to-sqlite";
  /** Rows copied per table, in copy order. */
  tables: Array<{ table: string; rows: number }>;
  /** Tables of the source the target has no place for, with their rows and why. */
  notCopied: Array<{ table: string; rows: number; reason: string }>;
  /** Columns of the source the target's table lacks. */
  columnsNotCopied: Array<{ table: string; column: string }>;
  /** PostgreSQL target: table → identity column → the next id it will give. */
  nextIds: Record<string, Record<string, number>>;
  /** Tasks copied. */
  tasks: number;
  /** With allowRunning: the agents that looked alive on the source when its snapshot was taken. */
  liveAgents: LiveAgent[];
  durationMs: number;
}

interface PlannedTable {
  spec: TableSpec;
  source: TableInfo;
  target: TableInfo;
  columns: string[];
}

/**
 * `roster db copy`: moves a roster database between SQLite and PostgreSQL with its
 * history (issue 19, deliverable 6). The source is read as one snapshot; the
 * target is written in one transaction, in batches (rows are streamed, never held
 * whole), ids kept and identity sequences moved past them. Refused before anything
 * is written: the same kind on both ends (VALIDATION), a source where an agent looks
 * alive (SOURCE_IN_USE, unless allowRunning), a target that holds tasks or any
 * other history (TARGET_NOT_EMPTY). A failure on the way rolls the target back.
 */
export async function copyDatabase(options: CopyOptions): Promise<CopySummary> {
  const monotonic = options.monotonic ?? (() => performance.now());
  const started = monotonic();
  const fromPg = isPostgresUrl(options.from);
  const toPg = isPostgresUrl(options.to);
  if (fromPg === toPg) {
    const kind = fromPg ? "PostgreSQL URLs" : "SQLite files";
    throw new RosterError(
      "VALIDATION",
      `--from, --to: both are ${kind}; db copy moves a database between SQLite and PostgreSQL (${fromPg ? "pg_dump copies one PostgreSQL database to another" : "sqlite3's .backup copies a SQLite file"})`,
      { details: { field: "--to" } },
    );
  }
  const batchRows = options.batchRows ?? COPY_BATCH_ROWS_DEFAULT;
  if (!Number.isSafeInteger(batchRows) || batchRows < 1 || batchRows > COPY_BATCH_ROWS_MAX) {
    throw new RosterError("VALIDATION", `--batch-size: must be an integer from 1 to ${COPY_BATCH_ROWS_MAX}, got ${String(batchRows)}`, { details: { field: "--batch-size" } });
  }
  const busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
  const source = fromPg ? await openPostgresSource(options.from, { now: options.now }) : openSqliteSource(options.from, { now: options.now, busyTimeoutMs });
  try {
    const live = await source.live(options.now);
    if (!options.allowRunning) assertQuiet(source.label, live);
    const target = toPg ? await openPostgresTarget(options.to, { now: options.now }) : createSqliteTarget(options.to, { now: options.now, busyTimeoutMs });
    try {
      const summary = await copyInto(source, target, { toPg, batchRows, onProgress: options.onProgress });
      await target.commit();
      return {
        from: source.label,
        to: target.label,
        direction: fromPg ? "postgres-to-sqlite" : "sqlite-to-postgres",
        ...summary,
        liveAgents: live.agents,
        durationMs: Math.round(monotonic() - started),
      };
    } catch (error) {
      await target.abort();
      throw error;
    }
  } finally {
    await source.close();
  }
}

/** Refuses a source on which something still runs: what it did after the snapshot would stay behind in the source. */
function assertQuiet(label: string, live: LiveSource): void {
  if (live.agents.length === 0 && live.leases === 0) return;
  const now = live.at;
  const agents = live.agents.slice(0, 3).map((a) => {
    const where = [a.pid === null ? null : `pid ${a.pid}`, a.hostname === null ? null : `on ${a.hostname}`].filter((x) => x !== null).join(" ");
    return `${a.id} (${a.kind}${where === "" ? "" : `, ${where}`}), last heartbeat ${seconds(now - a.lastHeartbeat)} ago`;
  });
  const parts = [
    live.agents.length > 0 ? `${live.agents.length} agent(s) look alive: ${agents.join("; ")}${live.agents.length > 3 ? "; …" : ""}` : null,
    live.leases > 0 ? `${live.leases} task(s) are leased and not past their renewal stamp` : null,
  ].filter((x) => x !== null);
  const quietAt = Math.max(...live.agents.map((a) => a.aliveUntil), live.leasesUntil ?? 0);
  throw new RosterError(
    "SOURCE_IN_USE",
    `--from ${label}: ${parts.join("; ")}. Stop its supervisors and workers first (SIGINT or SIGTERM to roster start), so no work done after the copy stays behind in ${label}; ` +
      `one that crashed stops looking alive within ${seconds(quietAt - now)}. Or pass --allow-running to copy a consistent snapshot anyway`,
    { retryable: false, details: { agents: live.agents.map((a) => a.id), leases: live.leases } },
  );
}

function seconds(ms: number): string {
  return `${Math.max(0, Math.ceil(ms / 1000))} s`;
}

async function copyInto(
  source: CopySource,
  target: CopyTarget,
  options: { toPg: boolean; batchRows: number; onProgress?: ((progress: CopyProgress) => void) | undefined },
): Promise<Pick<CopySummary, "tables" | "notCopied" | "columnsNotCopied" | "nextIds" | "tasks">> {
  const sourceTables = await source.tables();
  const targetTables = await target.tables();
  const plan: PlannedTable[] = [];
  const notCopied: CopySummary["notCopied"] = [];
  const columnsNotCopied: CopySummary["columnsNotCopied"] = [];
  for (const spec of COPY_TABLES) {
    const from = sourceTables.get(spec.name);
    if (from === undefined) continue;
    if (spec.sqliteDerives === true && !options.toPg) continue;
    const to = targetTables.get(spec.name);
    if (to === undefined) {
      if (spec.keptElsewhere === undefined) notCopied.push({ table: spec.name, rows: await source.count(spec.name), reason: "the target's schema has no such table" });
      continue;
    }
    const columns = from.columns.filter((c) => to.columns.some((t) => t.name === c.name)).map((c) => c.name);
    for (const c of from.columns) if (!columns.includes(c.name) && !DERIVED_COLUMNS.has(`${spec.name}.${c.name}`)) columnsNotCopied.push({ table: spec.name, column: c.name });
    plan.push({ spec, source: from, target: to, columns });
  }
  const known = new Set([...COPY_TABLES.map((t) => t.name), ...Object.keys(OWN_TABLES)]);
  for (const name of sourceTables.keys()) {
    if (!known.has(name)) notCopied.push({ table: name, rows: await source.count(name), reason: "not a table this roster's copy knows" });
  }
  // Nothing may be there already but what a `roster init` writes (personas, prices): merging two histories is not a copy.
  for (const p of plan) {
    if (p.spec.merge === true) continue;
    const rows = await target.count(p.spec.name);
    if (rows > 0) {
      throw new RosterError(
        "TARGET_NOT_EMPTY",
        `--to ${target.label}: already holds ${rows} row(s) in ${p.spec.name}; db copy fills a new or freshly initialised database and never merges two histories (use an empty database or schema)`,
        { retryable: false, details: { field: "--to", table: p.spec.name, rows } },
      );
    }
  }
  const tables: CopySummary["tables"] = [];
  const nextIds: CopySummary["nextIds"] = {};
  for (const p of plan) {
    const total = await source.count(p.spec.name);
    options.onProgress?.({ table: p.spec.name, copied: 0, total });
    const from = p.columns.map((name) => p.source.columns.find((c) => c.name === name)!);
    const to = p.columns.map((name) => p.target.columns.find((c) => c.name === name)!);
    let copied = 0;
    for await (const batch of source.batches(p.source, p.columns, options.batchRows)) {
      const rows = batch.map((row) => row.map((value, i) => convertValue(value, from[i]!, to[i]!)));
      await target.insert(p.target, p.columns, rows, p.spec.merge === true);
      copied += rows.length;
      options.onProgress?.({ table: p.spec.name, copied, total });
    }
    if (p.spec.merge !== true) {
      const there = await target.count(p.spec.name);
      if (there !== copied) throw new RosterError("INTERNAL", `--to ${target.label}: ${p.spec.name} holds ${there} rows after copying ${copied}`, { retryable: false });
    }
    const next = await target.advanceIdentity(p.target);
    if (Object.keys(next).length > 0) nextIds[p.spec.name] = next;
    tables.push({ table: p.spec.name, rows: copied });
  }
  await target.finish();
  return { tables, notCopied, columnsNotCopied, nextIds, tasks: tables.find((t) => t.table === "tasks")?.rows ?? 0 };
}
