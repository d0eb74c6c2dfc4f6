/**
 * `pgscale` (issue 19, deliverable 7): where one PostgreSQL primary saturates. On one
 * private PostgreSQL server, 1, 2, 4 and 8 real `roster start` processes drain queues
 * of no-op tasks of rising depth; for each drain: claims/s and settles/s, the server's
 * CPU against the supervisors', WAL bytes per task (and by table), rows written per
 * table, and what the sessions wait on. docs/ARCHITECTURE.md ("PostgreSQL and beyond
 * one machine") reads its plan from these figures.
 */
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { startPrivateCluster } from "../lib/postgres.js";
import { measurePgscale, PGSCALE_CONCURRENCY, PGSCALE_THREADS, type PgscaleRun } from "./pgscale-run.js";
import { BENCH_PG_SETTINGS } from "./postgres.js";
import { fmt, fmtSummary, summarize } from "./support/stats.js";
import type { Scenario, ScenarioContext, ScenarioResult, Table } from "./support/types.js";

const kb = (bytes: number) => fmt(bytes / 1024, 1);

function sizes(quick: boolean): { supervisors: number[]; depths: number[]; rounds: number } {
  return quick ? { supervisors: [1, 2], depths: [300], rounds: 1 } : { supervisors: [1, 2, 4, 8], depths: [2_000, 20_000], rounds: 2 };
}

/** The runs of one (depth, supervisors) cell, and a figure's median with its spread. */
function cell(runs: PgscaleRun[], depth: number, supervisors: number): PgscaleRun[] {
  return runs.filter((r) => r.depth === depth && r.supervisors === supervisors);
}
function med(runs: PgscaleRun[], f: (r: PgscaleRun) => number, digits?: number): string {
  return fmtSummary(summarize(runs.map(f)), digits);
}

function topWaits(runs: PgscaleRun[], n = 4): string {
  const total = new Map<string, number>();
  for (const r of runs) for (const w of r.waits) total.set(w.what, (total.get(w.what) ?? 0) + w.sessions / runs.length);
  return [...total.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([what, sessions]) => `${what} ${fmt(sessions, 2)}`)
    .join("; ");
}

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const { supervisors, depths, rounds } = sizes(ctx.quick);
  const bin = join(ctx.rootDir, "dist", "src", "cli", "bin.js");
  const server = await startPrivateCluster({ settings: BENCH_PG_SETTINGS });
  const runs: PgscaleRun[] = [];
  let version = "";
  try {
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    version = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
    await admin.end();
    // Rounds outermost: each cell is measured at different moments of a shared machine's load.
    for (let round = 1; round <= rounds; round++) {
      ctx.log(`round ${round} of ${rounds}`);
      for (const depth of depths) {
        for (const s of supervisors) {
          const url = await server.newDatabase("roster_pgscale");
          runs.push(await measurePgscale({ url, bin, workDir: ctx.workDir, supervisors: s, depth, walDetail: round === 1 && depth === depths[0], log: ctx.log }));
        }
      }
    }
  } finally {
    await server.stop();
  }

  const cores = cpus().length;
  const drainTable: Table = {
    caption: `Drains of no-op tasks by N \`roster start\` processes (${PGSCALE_THREADS} worker thread, ${PGSCALE_CONCURRENCY} slots each) on one PostgreSQL primary; median (min–max) of ${rounds} round(s). CPU in cores (CPU seconds ÷ wall seconds; the machine has ${cores}).`,
    columns: [
      "queued",
      "supervisors",
      "claims/s",
      "settles/s",
      "tasks per claim",
      "server CPU, cores (ms per task)",
      "supervisors' CPU, cores (ms per task)",
      "commits per task",
      "WAL per task: enqueue / drain, KiB",
      "roster sessions in the server (avg per sample)",
      "load 1m",
    ],
    rows: depths.flatMap((depth) =>
      supervisors.map((s) => {
        const c = cell(runs, depth, s);
        return [
          depth.toLocaleString("en-US"),
          String(s),
          med(c, (r) => r.claimsPerSec, 0),
          med(c, (r) => r.settlesPerSec, 0),
          med(c, (r) => r.claimBatches, 1),
          `${med(c, (r) => r.serverCores, 2)} (${med(c, (r) => r.serverCpuMsPerTask, 3)})`,
          `${med(c, (r) => r.supervisorCores, 2)} (${med(c, (r) => r.supervisorCpuMsPerTask, 3)})`,
          med(c, (r) => r.commitsPerTask, 2),
          `${kb(summarize(c.map((r) => r.walBytesEnqueue / r.depth)).median)} / ${kb(summarize(c.map((r) => r.walBytesDrain / r.depth)).median)}`,
          topWaits(c),
          c.map((r) => fmt(r.loadAverage1m.before, 1)).join(", "),
        ];
      }),
    ),
  };
  const detailed = runs.filter((r) => r.walByTable !== null);
  const walTable: Table | null =
    detailed.length === 0
      ? null
      : {
          caption: `WAL of the drain by table (pg_walinspect; indexes and TOAST counted with their table), bytes per task, round 1, ${depths[0]!.toLocaleString("en-US")} queued; full-page images in brackets:`,
          columns: ["table", ...detailed.map((r) => `${r.supervisors} supervisor(s)`)],
          rows: [...new Set(detailed.flatMap((r) => r.walByTable!.map((w) => w.what)))].map((what) => [
            what,
            ...detailed.map((r) => {
              const w = r.walByTable!.find((x) => x.what === what);
              return w === undefined ? "0" : `${fmt(w.bytes / r.depth, 0)} (${fmt(w.fpiBytes / r.depth, 0)})`;
            }),
          ]),
        };
  const one = runs.find((r) => r.depth === depths[depths.length - 1] && r.supervisors === supervisors[0]) ?? runs[0]!;
  const writesTable: Table = {
    caption: `Rows written per task over enqueue and drain (pg_stat_user_tables), ${one.depth.toLocaleString("en-US")} queued, ${one.supervisors} supervisor(s):`,
    columns: ["table", "inserted", "updated (of which HOT)", "deleted"],
    rows: Object.entries(one.writes)
      .sort((a, b) => b[1].inserted + b[1].updated - (a[1].inserted + a[1].updated))
      .map(([name, w]) => [name, fmt(w.inserted / one.depth, 2), `${fmt(w.updated / one.depth, 2)} (${fmt(w.hot / one.depth, 2)})`, fmt(w.deleted / one.depth, 2)]),
  };
  const loadAtStart = runs[0]?.loadAverage1m.before ?? loadavg()[0]!;
  const notes = [
    `One private PostgreSQL ${version} server (bench/lib/postgres.ts, initdb into a temp folder) with the \`postgres\` scenario's settings (${Object.entries(BENCH_PG_SETTINGS)
      .map(([k, v]) => `${k}=${v}`)
      .join(", ")}); a fresh database per drain. Each drain: N \`roster start --threads ${PGSCALE_THREADS} --concurrency ${PGSCALE_CONCURRENCY}\` processes start on an empty queue and register; a CHECKPOINT; then the queue's tasks are enqueued in one transaction, so they become ready at once; the drain runs from that commit to the last completion.`,
    "claims/s and settles/s: task:claimed and task:completed events between the 10th and 90th percentile of their times (the server's clock), so start-up and the tail are left out. WAL per task: pg_current_wal_lsn before and after, over the task count; it includes the full-page images of each page's first change after the CHECKPOINT, as after every checkpoint in production. Server CPU: utime+stime of the postmaster and every child (and of children it reaped) from /proc; supervisors' CPU likewise for the N processes (their worker threads included).",
    "Sessions: pg_stat_activity every 100 ms, roster's sessions that were active or inside a transaction, by what they did: `CPU (running)`, a wait event (`Lock: transactionid` is a row lock held by another transaction; `LWLock: WALWrite`/`IO: WALSync` the WAL), or `Client: ClientRead (in a transaction)`, a transaction open while its client process computes or waits for a core.",
    `**Caveat: ${cores} cores shared by the server, the N supervisors, this harness and other work on the machine.** The 1-minute load average was ${loadAtStart.toFixed(1)} when the scenario started (per drain in the table). A saturated figure here says what this machine's cores can do for server and clients together, not what a dedicated primary can: on separate hosts the supervisors' CPU leaves the server's machine, and the server's CPU per task is the figure that carries over.`,
  ];
  return {
    scenario: "pgscale",
    title: "Where one PostgreSQL primary saturates: 1–8 `roster start` processes draining no-op tasks; claims/s, settles/s, server CPU, WAL per task, waits",
    quick: ctx.quick,
    startedAt,
    durationMs: performance.now() - t0,
    params: { supervisors, depths, rounds, concurrencyPerSupervisor: PGSCALE_CONCURRENCY, threadsPerSupervisor: PGSCALE_THREADS, postgres: version },
    figures: { runs },
    tables: [drainTable, ...(walTable === null ? [] : [walTable]), writesTable],
    targets: [],
    notes,
    skipped: [],
  };
}

export const pgscaleScenario: Scenario = {
  name: "pgscale",
  description: "PostgreSQL: where one primary saturates (1–8 roster start processes, queue depths; claims/s, settles/s, server CPU, WAL/task, waits)",
  run,
};
