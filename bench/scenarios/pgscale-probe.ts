/**
 * What one PostgreSQL server spends during a measured window (the `pgscale` scenario):
 * its processes' CPU from /proc, the WAL written (pg_current_wal_lsn, and by relation
 * with pg_walinspect), the rows written per table (pg_stat_user_tables), and what its
 * sessions wait on (pg_stat_activity, sampled). Linux only (/proc); the reads run on a
 * client of their own whose application_name is not roster's.
 */
import { readdirSync } from "node:fs";
import pg from "pg";
import { CLOCK_TICKS, readProcStat } from "./support/resources.js";

function readStat(pid: number) {
  return readProcStat(`/proc/${pid}/stat`); // null once it has exited
}

/** CPU seconds of one process (every thread) so far; 0 once it is gone. */
export function processCpuSeconds(pid: number): number {
  return (readStat(pid)?.own ?? 0) / CLOCK_TICKS;
}

/**
 * CPU seconds the server has used so far: the postmaster, its live children (backends,
 * WAL writer, checkpointer …) and the children it has already reaped (backends of
 * connections closed meanwhile), so a difference of two readings is the server's share
 * of a window.
 */
export function serverCpuSeconds(postmaster: number): number {
  const root = readStat(postmaster);
  if (root === null) throw new Error(`the postmaster (pid ${postmaster}) is not running`);
  let ticks = root.own + root.reaped;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s !== null && s.ppid === postmaster) ticks += s.own;
  }
  return ticks / CLOCK_TICKS;
}

/** The postmaster's pid: the parent of this client's backend. */
export async function postmasterPid(client: pg.Client): Promise<number> {
  const backend = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
  const stat = readStat(backend);
  if (stat === null) throw new Error(`cannot read /proc/${backend}/stat: the server must run on this machine`);
  return stat.ppid;
}

/** The server's WAL insert position, in bytes. */
export async function walPosition(client: pg.Client): Promise<string> {
  return (await client.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn")).rows[0]!.lsn;
}

export async function walBytesBetween(client: pg.Client, from: string, to: string): Promise<number> {
  return Number((await client.query<{ n: string }>("SELECT pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::bigint AS n", [from, to])).rows[0]!.n);
}

export interface WalShare {
  /** A table (its indexes and TOAST counted with it), or a record kind without a relation ("commit records"). */
  what: string;
  bytes: number;
  /** Of which full-page images (the first change of a page after a checkpoint). */
  fpiBytes: number;
}

/**
 * WAL between two positions by the table each record changes (pg_walinspect, a contrib
 * extension of PostgreSQL 15+, created in the database if it can be). Null when the
 * extension is not available.
 */
export async function walByTable(client: pg.Client, from: string, to: string): Promise<WalShare[] | null> {
  try {
    await client.query("CREATE EXTENSION IF NOT EXISTS pg_walinspect");
  } catch {
    return null;
  }
  const { rows } = await client.query<{ what: string; bytes: string; fpi: string }>(
    `WITH r AS (
       SELECT record_length, fpi_length, resource_manager, substring(block_ref from 'rel \\d+/\\d+/(\\d+)')::oid AS node
       FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn))
     SELECT coalesce(owner.relname, c.relname, CASE WHEN r.node IS NULL THEN lower(r.resource_manager) || ' records' ELSE 'other relations' END) AS what,
            sum(r.record_length)::bigint AS bytes, sum(r.fpi_length)::bigint AS fpi
     FROM r
     LEFT JOIN pg_class c ON c.relfilenode = r.node AND r.node <> 0
     LEFT JOIN pg_index i ON i.indexrelid = c.oid
     LEFT JOIN pg_class toast_of ON toast_of.reltoastrelid = coalesce(i.indrelid, c.oid)
     LEFT JOIN pg_class owner ON owner.oid = coalesce(toast_of.oid, i.indrelid)
     GROUP BY 1 ORDER BY 2 DESC`,
    [from, to],
  );
  return rows.map((r) => ({ what: r.what, bytes: Number(r.bytes), fpiBytes: Number(r.fpi) }));
}

export type TableWrites = Record<string, { inserted: number; updated: number; hot: number; deleted: number }>;

/** Rows written so far, per table of the current database (the server's statistics, flushed by each backend at least every second and at exit). */
export async function tableWrites(client: pg.Client): Promise<TableWrites> {
  const { rows } = await client.query<{ relname: string; ins: string; upd: string; hot: string; del: string }>(
    "SELECT relname, n_tup_ins AS ins, n_tup_upd AS upd, n_tup_hot_upd AS hot, n_tup_del AS del FROM pg_stat_user_tables",
  );
  return Object.fromEntries(rows.map((r) => [r.relname, { inserted: Number(r.ins), updated: Number(r.upd), hot: Number(r.hot), deleted: Number(r.del) }]));
}

/** Transactions committed so far in the current database (statistics flushed as for tableWrites). */
export async function commitsSoFar(client: pg.Client): Promise<number> {
  return Number((await client.query<{ n: string }>("SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()")).rows[0]!.n);
}

export function writesBetween(before: TableWrites, after: TableWrites): TableWrites {
  const out: TableWrites = {};
  for (const [name, a] of Object.entries(after)) {
    const b = before[name] ?? { inserted: 0, updated: 0, hot: 0, deleted: 0 };
    const d = { inserted: a.inserted - b.inserted, updated: a.updated - b.updated, hot: a.hot - b.hot, deleted: a.deleted - b.deleted };
    if (d.inserted + d.updated + d.deleted > 0) out[name] = d;
  }
  return out;
}

/**
 * Samples, every intervalMs, what roster's sessions (application_name "roster") are doing
 * inside the server: running on CPU, waiting for a lock (which kind, and the waiting
 * statement's first words), for I/O or the WAL,
 * or idle inside a transaction while their client computes (ClientRead).
 */
export class WaitSampler {
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  samples = 0;
  /** Samples whose query failed (not counted in `samples`). */
  failed = 0;
  /** Session-samples by "type: event" ("CPU" when running). */
  readonly counts = new Map<string, number>();

  constructor(private readonly client: pg.Client) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      if (this.inFlight !== null) return;
      this.inFlight = this.sample()
        .catch(() => void this.failed++)
        .finally(() => (this.inFlight = null));
    }, intervalMs);
  }

  private async sample(): Promise<void> {
    const { rows } = await this.client.query<{ w: string; n: number }>(
        `SELECT CASE WHEN state = 'active' AND wait_event_type IS NULL THEN 'CPU (running)'
                     WHEN state LIKE 'idle in transaction%' THEN 'Client: ClientRead (in a transaction)'
                     WHEN wait_event_type = 'Lock' THEN 'Lock: ' || wait_event || ' (' || left(btrim(regexp_replace(query, '\\s+', ' ', 'g')), 40) || '…)'
                     ELSE wait_event_type || ': ' || wait_event END AS w, count(*)::int AS n
         FROM pg_stat_activity
         WHERE application_name = 'roster' AND (state = 'active' OR state LIKE 'idle in transaction%')
         GROUP BY 1`,
    );
    this.samples++;
    for (const r of rows) this.counts.set(r.w, (this.counts.get(r.w) ?? 0) + r.n);
  }

  /** Stops sampling once the sample in flight (if any) has returned. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
  }

  /** Average sessions per sample in each state, most first. */
  averages(): Array<{ what: string; sessions: number }> {
    return [...this.counts.entries()].map(([what, n]) => ({ what, sessions: n / Math.max(1, this.samples) })).sort((a, b) => b.sessions - a.sessions);
  }
}
