/**
 * `postgres` (issue 19's benchmarks): on one private PostgreSQL server, in one run,
 * 1. 20,000 no-op tasks at concurrency 256 through roster's real supervisor on the
 *    PostgreSQL store beside graphile-worker and pg-boss, rounds interleaved;
 * 2. pickup latency: a task enqueued by one process on one "host" (network namespace)
 *    → its adapter's start in a supervisor on another (LISTEN/NOTIFY wake-ups);
 * 3. the store's claim rate with 10k and 1M tasks queued.
 * Every system runs in a child process of its own on a fresh database.
 */
import { cpus, loadavg } from "node:os";
import pg from "pg";
import { startPrivateCluster, type PostgresServer } from "../lib/postgres.js";
import type { QueueRun } from "../peers/types.js";
import type { PgBossMode } from "../peers/pgboss.js";
import { runInChild } from "./support/child.js";
import { profileRun, profileTables } from "./support/profiled.js";
import { createHosts, type Host, type Hosts } from "./support/netns.js";
import { benchModule } from "./support/paths.js";
import { fmt, fmtRatio, fmtSummary, quantile, summarize } from "./support/stats.js";
import { inRunDir } from "./support/systems.js";
import type { Scenario, ScenarioContext, ScenarioResult, Skipped, Table, TargetCheck } from "./support/types.js";
import type { LatencyRun, SupervisedRun } from "./supervised-child.js";
import type { ClaimRateRun } from "./postgres-child.js";
import { THROUGHPUT_CONCURRENCY, THROUGHPUT_JOBS } from "./throughput.js";

/**
 * The server's settings, the same for every system. Durable as SQLite's
 * synchronous=NORMAL is (the throughput scenario's default): fsync and full page
 * writes on, so a crash never corrupts; synchronous_commit off, so a commit does not
 * wait for its WAL flush (an OS crash may lose the last few hundred ms of commits).
 */
export const BENCH_PG_SETTINGS: Readonly<Record<string, string>> = Object.freeze({
  max_connections: "400",
  shared_buffers: "256MB",
  fsync: "on",
  full_page_writes: "on",
  synchronous_commit: "off",
  max_wal_size: "4GB",
  // Per-statement times for the profiled roster run (the same small overhead for every system).
  shared_preload_libraries: "pg_stat_statements",
});

const ROSTER = "roster supervisor (PostgreSQL)";
const GRAPHILE = "graphile-worker";
const PGBOSS: Record<PgBossMode, string> = { work: "pg-boss (work)", "fetch/complete": "pg-boss (fetch/complete)" };

function withHost(url: string, host: string): string {
  const u = new URL(url);
  u.hostname = host;
  return u.toString();
}

async function serverInfo(server: PostgresServer): Promise<{ version: string; settings: Record<string, string> }> {
  const client = new pg.Client({ connectionString: server.adminUrl });
  await client.connect();
  try {
    const version = (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
    const names = [...Object.keys(BENCH_PG_SETTINGS), "wal_level", "work_mem", "max_worker_processes"];
    const { rows } = await client.query<{ name: string; setting: string; unit: string | null }>("SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)", [names]);
    return { version, settings: Object.fromEntries(rows.map((r) => [r.name, r.unit === null ? r.setting : `${r.setting} × ${r.unit}`])) };
  } finally {
    await client.end();
  }
}

async function throughput(ctx: ScenarioContext, server: PostgresServer, skipped: Skipped[]) {
  const jobs = ctx.quick ? 500 : THROUGHPUT_JOBS;
  const reps = ctx.quick ? 1 : 3;
  const concurrency = THROUGHPUT_CONCURRENCY;
  const rows = new Map<string, Array<QueueRun | SupervisedRun>>();
  const broken = new Set<string>();
  const attempt = async (system: string, body: (url: string) => Promise<QueueRun | SupervisedRun>) => {
    if (broken.has(system)) return;
    try {
      const r = await body(await server.newDatabase("roster_bench"));
      rows.set(system, [...(rows.get(system) ?? []), r]);
      ctx.log(`  ${system}: ${fmt(r.jobsPerSec)} jobs/s`);
    } catch (error) {
      broken.add(system);
      skipped.push({ what: system, reason: `not runnable: ${(error as Error).message.split("\n")[0]}` });
      ctx.log(`  ${system}: FAILED ${(error as Error).message}`);
    }
  };
  for (let rep = 0; rep < reps; rep++) {
    ctx.log(`throughput round ${rep + 1}/${reps}, ${jobs} jobs each`);
    await attempt(ROSTER, (dbUrl) =>
      inRunDir(ctx, "roster-pg", (dir) =>
        runInChild<SupervisedRun>({ modulePath: benchModule("scenarios/supervised-child"), fn: "throughputRun", args: { dir, jobs, concurrency, synchronous: "NORMAL", dbUrl } }),
      ),
    );
    await attempt(GRAPHILE, (url) => runInChild<QueueRun>({ modulePath: benchModule("peers/graphile-worker"), fn: "runGraphileWorker", args: { jobs, concurrency, url } }));
    for (const mode of ["work", "fetch/complete"] as const) {
      await attempt(PGBOSS[mode], (url) => runInChild<QueueRun>({ modulePath: benchModule("peers/pgboss"), fn: "runPgBoss", args: { jobs, concurrency, url, mode } }));
    }
  }
  const rate = (system: string) => summarize(rows.get(system)?.map((r) => r.jobsPerSec) ?? []);
  const roster = rate(ROSTER);
  const table: Table = { columns: ["system", "jobs/s", "roster ÷ this", "peak RSS, MB", "settings"], rows: [] };
  const figures: Record<string, unknown> = {};
  for (const [system, runs] of rows) {
    const r = rate(system);
    const perRound = summarize(runs.map((x, i) => (rows.get(ROSTER)?.[i]?.jobsPerSec ?? Number.NaN) / x.jobsPerSec).filter(Number.isFinite));
    figures[system] = { jobsPerSec: r, rosterOverThis: perRound, peakRssMb: summarize(runs.map((x) => x.peakRssMb)), settings: runs[0]!.settings };
    const settings = Object.entries(runs[0]!.settings)
      .map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
      .join(", ");
    table.rows.push([
      system,
      fmtSummary(r),
      system === ROSTER ? "1.00×" : `${fmtRatio(roster.median / r.median)}${perRound.runs > 1 ? ` (${fmtRatio(perRound.min)}–${fmtRatio(perRound.max)} by round)` : ""}`,
      fmtSummary(summarize(runs.map((x) => x.peakRssMb))),
      settings,
    ]);
  }
  const first = rows.get(ROSTER)?.[0] as SupervisedRun | undefined;
  const txTable: Table | null =
    first?.transactions === undefined
      ? null
      : {
          caption: "Transactions roster's supervisor committed on PostgreSQL while processing (first round), from the store's onTransaction hook:",
          columns: ["transaction", "per 1,000 tasks", "ms each", "ms in all"],
          rows: Object.entries(first.transactions)
            .sort((a, b) => b[1].ms - a[1].ms)
            .map(([name, t]) => [name, fmt((t.count / jobs) * 1000, 1), fmt(t.ms / t.count, 2), fmt(t.ms)]),
        };
  const claimsPerTask = first?.transactions?.["tasks.claim"] === undefined ? Number.NaN : jobs / first.transactions["tasks.claim"].count;
  // The target compares roster with the faster pg-boss consumer.
  const boss = [PGBOSS.work, PGBOSS["fetch/complete"]].map((s) => ({ s, r: rate(s) })).filter((x) => x.r.runs > 0).sort((a, b) => b.r.median - a.r.median)[0];
  const ratioTarget = (name: string, other: { s: string; r: ReturnType<typeof rate> } | undefined, wanted: number): TargetCheck => {
    const value = roster.runs > 0 && other !== undefined ? roster.median / other.r.median : Number.NaN;
    return {
      name,
      target: `≥ ${wanted}×`,
      value: Number.isFinite(value) ? `${fmtRatio(value)} (${fmt(roster.median)} vs ${fmt(other!.r.median)} jobs/s, ${other!.s})` : "not measured",
      met: ctx.quick || !Number.isFinite(value) ? null : value >= wanted,
    };
  };
  return {
    jobs,
    reps,
    table,
    txTable,
    figures,
    claimBatch: claimsPerTask,
    // Share of the first round's processing time during which a claim transaction was in flight (the producer claims one at a time).
    claimBusy: first?.transactions?.["tasks.claim"] === undefined ? Number.NaN : first.transactions["tasks.claim"].ms / first.processMs,
    claimMs: first?.transactions?.["tasks.claim"] === undefined ? Number.NaN : first.transactions["tasks.claim"].ms / first.transactions["tasks.claim"].count,
    targets: [ratioTarget("roster ÷ pg-boss (the faster consumer)", boss, 1.2), ratioTarget("roster ÷ graphile-worker", { s: GRAPHILE, r: rate(GRAPHILE) }, 1.0)],
  };
}

/**
 * One more roster run, not in the figures: under `node --cpu-prof` (where the supervisor's
 * threads spend their time) and with pg_stat_statements reset before it (where the server
 * spends it), to say what bounds roster's rate.
 */
async function profiled(ctx: ScenarioContext, server: PostgresServer, jobs: number): Promise<{ tables: Table[]; jobsPerSec: number; statements: unknown[] }> {
  const dbUrl = await server.newDatabase("roster_bench");
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  try {
    await admin.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    await admin.query("SELECT pg_stat_statements_reset()");
    const run = await profileRun(ctx, {
      modulePath: benchModule("scenarios/supervised-child"),
      fn: "throughputRun",
      args: (dir) => ({ dir, jobs, concurrency: THROUGHPUT_CONCURRENCY, synchronous: "NORMAL", dbUrl }),
    });
    const r = run.result as SupervisedRun;
    const { rows } = await admin.query<{ calls: string; total_ms: number; rows: string; query: string }>(
      `SELECT s.calls, s.total_exec_time AS total_ms, s.rows, s.query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
       WHERE d.datname = $1 AND s.query ~* '^\\s*(WITH|UPDATE|INSERT|SELECT|DELETE)\\M' ORDER BY s.total_exec_time DESC LIMIT 8`,
      [new URL(dbUrl).pathname.slice(1)],
    );
    const statements = rows.map((x) => ({ calls: Number(x.calls), totalMs: x.total_ms, rows: Number(x.rows), query: x.query.replace(/\s+/g, " ").trim() }));
    const label = `one extra roster run under --cpu-prof, ${fmt(r.jobsPerSec)} jobs/s; not in the figures above`;
    return {
      jobsPerSec: r.jobsPerSec,
      statements,
      tables: [
        ...profileTables(label, run.summaries, 2, 8),
        {
          caption: `The server's side of the same run (pg_stat_statements, top statements by execution time, enqueue included, migrations left out):`,
          columns: ["statement", "calls", "rows", "ms in all", "µs per row"],
          rows: statements.map((x) => [`\`${x.query.slice(0, 90)}${x.query.length > 90 ? "…" : ""}\``, String(x.calls), String(x.rows), fmt(x.totalMs), fmt(x.rows > 0 ? (x.totalMs * 1000) / x.rows : Number.NaN, 0)]),
        },
      ],
    };
  } finally {
    await admin.end();
  }
}

async function latency(ctx: ScenarioContext, server: PostgresServer, hosts: Host[] | null) {
  const samples = ctx.quick ? 30 : 300;
  const reps = ctx.quick ? 1 : 3;
  const idleWindowMs = ctx.quick ? 500 : 5_000;
  const gapMs: [number, number] = [10, 40];
  const runs: LatencyRun[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const url = await server.newDatabase("roster_bench");
    const supervisorUrl = hosts === null ? url : withHost(url, hosts[0]!.serverAddress);
    const enqueuerUrl = hosts === null ? url : withHost(url, hosts[1]!.serverAddress);
    const r = await inRunDir(ctx, "pg-latency", (dir) =>
      runInChild<LatencyRun>({
        modulePath: benchModule("scenarios/supervised-child"),
        fn: "latencyRun",
        args: { dir, samples, idleWindowMs, gapMs, dbUrl: supervisorUrl, enqueuerDbUrl: enqueuerUrl, ...(hosts === null ? {} : { enqueuerNetns: hosts[1]!.netns }) },
        ...(hosts === null ? {} : { netns: hosts[0]!.netns }),
      }),
    );
    runs.push(r);
    ctx.log(`latency rep ${rep + 1}/${reps}: p50 ${fmt(r.p50Ms)} ms, p99 ${fmt(r.p99Ms)} ms, idle CPU ${fmt(r.idleCpuPercent)} %`);
  }
  const all = runs.flatMap((r) => r.latenciesMs);
  return {
    samples,
    reps,
    p50: summarize(runs.map((r) => r.p50Ms)),
    p99: summarize(runs.map((r) => r.p99Ms)),
    max: summarize(runs.map((r) => r.maxMs)),
    idleCpu: summarize(runs.map((r) => r.idleCpuPercent)),
    pooled: { p50Ms: quantile(all, 0.5), p90Ms: quantile(all, 0.9), p99Ms: quantile(all, 0.99), n: all.length },
    gapMs,
    settings: runs[0]?.settings ?? {},
  };
}

async function claimRate(ctx: ScenarioContext, server: PostgresServer) {
  const depths = ctx.quick ? [1_000, 5_000] : [10_000, 1_000_000];
  const batch = THROUGHPUT_CONCURRENCY;
  const loops = ctx.quick ? 1 : 3;
  const out: ClaimRateRun[] = [];
  for (const depth of depths) {
    const take = Math.min(Math.floor(depth / (2 * loops)), 20_000);
    const url = await server.newDatabase("roster_bench");
    const r = await inRunDir(ctx, "pg-claim", (dir) =>
      runInChild<ClaimRateRun>({ modulePath: benchModule("scenarios/postgres-child"), fn: "claimRateRun", args: { url, dir, depth, take, batch, loops }, timeoutMs: 1_800_000 }),
    );
    out.push(r);
    ctx.log(`claim rate at ${depth}: ${r.loops.map((l) => fmt(l.claimsPerSec)).join(", ")} claims/s (enqueue ${fmt(r.enqueueMs / 1000, 1)} s)`);
  }
  return { batch, loops, runs: out };
}

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const skipped: Skipped[] = [];
  const notes: string[] = [];
  const loadAtStart = loadavg()[0]!;
  let hosts: Hosts | null = null;
  try {
    hosts = createHosts(2);
  } catch (error) {
    notes.push(`Network namespaces could not be made here (${(error as Error).message.split("\n")[0]}), so the latency was measured over loopback, both processes on the root namespace.`);
  }
  const server = await startPrivateCluster({
    settings: BENCH_PG_SETTINGS,
    ...(hosts === null ? {} : { extraListenAddresses: hosts.hosts.map((h) => h.serverAddress), hbaLines: hosts.hosts.map((h) => `host all all ${h.address}/32 trust`) }),
  });
  try {
    const info = await serverInfo(server);
    ctx.log(`PostgreSQL ${info.version}`);
    const tp = await throughput(ctx, server, skipped);
    let prof: Awaited<ReturnType<typeof profiled>> | null = null;
    try {
      prof = await profiled(ctx, server, tp.jobs);
    } catch (error) {
      notes.push(`The profiled roster run failed: ${(error as Error).message.split("\n")[0]}`);
    }
    const lat = await latency(ctx, server, hosts?.hosts ?? null);
    const claims = await claimRate(ctx, server);

    const latencyTable: Table = {
      caption: `Pickup latency: enqueue committed (one process${hosts === null ? "" : `, host ${hosts.hosts[1]!.address}`}) → the adapter's start in the supervisor (another process${hosts === null ? "" : `, host ${hosts.hosts[0]!.address}`}):`,
      columns: ["p50, ms", "p99, ms", "max, ms", "pooled p50 / p90 / p99, ms", "idle supervisor CPU, % of a core"],
      rows: [[fmtSummary(lat.p50, 2), fmtSummary(lat.p99, 2), fmtSummary(lat.max, 1), `${fmt(lat.pooled.p50Ms, 2)} / ${fmt(lat.pooled.p90Ms, 2)} / ${fmt(lat.pooled.p99Ms, 2)} (n ${lat.pooled.n})`, fmtSummary(lat.idleCpu, 2)]],
    };
    const claimTable: Table = {
      caption: `The PostgreSQL store's claim rate (tasks.claim, ${claims.batch} per call, one call after another on one store), by queue depth:`,
      columns: ["queued", "claims/s", "one claim call, p50 / p99 ms", "claim statement alone (EXPLAIN ANALYZE): planning / execution, ms", "of which leasing the rows / their events, ms", "enqueue, tasks/s"],
      rows: claims.runs.map((r) => [
        r.depth.toLocaleString("en-US"),
        fmtSummary(summarize(r.loops.map((l) => l.claimsPerSec))),
        `${fmt(summarize(r.loops.map((l) => l.callMsP50)).median, 2)} / ${fmt(summarize(r.loops.map((l) => l.callMsP99)).median, 2)}`,
        `${fmt(r.explain.planningMs, 2)} / ${fmt(r.explain.executionMs, 2)}`,
        `${fmt(r.explain.leaseUpdateMs, 2)} / ${fmt(r.explain.eventsInsertMs, 2)}`,
        fmt((r.depth / r.enqueueMs) * 1000),
      ]),
    };
    const shallow = claims.runs[0];
    const deep = claims.runs[claims.runs.length - 1];
    const depthRatio = shallow !== undefined && deep !== undefined ? summarize(deep.loops.map((l) => l.claimsPerSec)).median / summarize(shallow.loops.map((l) => l.claimsPerSec)).median : Number.NaN;
    const targets: TargetCheck[] = [
      ...tp.targets,
      { name: "pickup latency p99", target: "≤ 10 ms", value: `${fmt(lat.p99.median, 2)} ms`, met: ctx.quick ? null : lat.p99.median <= 10 },
    ];
    notes.unshift(
      `One private PostgreSQL ${info.version} server (initdb into a temp folder, run as nobody; bench/lib/postgres.ts) for every system, each run on a fresh database. Server settings: ${Object.entries(info.settings)
        .map(([k, v]) => `${k}=${v}`)
        .join(", ")}. Durability as SQLite's synchronous=NORMAL: fsync on, commits not waiting for their WAL flush.`,
      `Throughput: ${tp.jobs.toLocaleString("en-US")} no-op jobs enqueued first, then processing timed from the start of the consumer until every job is recorded done (roster: its last task:completed after commit; graphile-worker: its jobs table empty; pg-boss: every job in state completed). ${tp.reps} round(s), systems interleaved within each round, each in a fresh child process; median (min–max). roster runs its real supervisor (worker threads, the \`echo\` adapter, every rule on: fenced leases, task_events in each transaction, dependency counters, LISTEN/NOTIFY); the peers run their handler inline on the main thread. roster's supervisor claimed ${fmt(tp.claimBatch, 0)} tasks per claim on average in the first round.`,
      `What bounds roster here (first round): its producer claims one transaction after another, and a claim transaction was in flight ${fmt(tp.claimBusy * 100, 0)} % of the processing time, ${fmt(tp.claimMs, 1)} ms each (BEGIN, the gate read, the one claim statement, COMMIT, and the wait for the event loop) for ${fmt(tp.claimBatch, 0)} tasks on average, not 256: a slot is freed only once its outcome's settle transaction commits, so the slots are shared between tasks waiting for a claim, running, and waiting for a settle. graphile-worker's local queue keeps 500 jobs fetched ahead and its batched completions do not hold a worker. pg-boss (work) is bounded by its polling: a v10 worker fetches once per pollingIntervalSeconds (0.5 s at least) whatever it finds, so batchSize 256 gives at most 512 jobs/s; the fetch/complete loop is pg-boss without that wait.`,
      `Latency: the supervisor (16 slots, the \`module\` adapter returning performance.timeOrigin + performance.now()) ${hosts === null ? "and the enqueuer run on this machine's loopback" : "and the enqueuer run in network namespaces of their own, each reaching the server over its own veth link (a host each; the server on the root namespace)"}; ${lat.samples} tasks enqueued one at a time ${lat.gapMs[0]}–${lat.gapMs[1]} ms apart, ${lat.reps} run(s). The latency covers the NOTIFY delivered at the enqueue's commit, the supervisor's claim, the hop to a worker thread and the adapter's start; both ends read the same machine clock.`,
      `Claim rate: tasks enqueued through the store (10,000 per transaction), then ${claims.loops} loop(s) of claims of ${claims.batch} (the supervisor's claim when all 256 slots are free) taking up to half the queue; each loop's rate; deepest ÷ shallowest ${fmtRatio(depthRatio)}.`,
    );
    const cores = cpus().length;
    if (loadAtStart > cores) {
      notes.push(
        `**Caveat: a loaded machine.** The 1-minute load average was ${loadAtStart.toFixed(1)} on ${cores} cores when the scenario started (other work shares it), so every process, the server's included, waited for a core: absolute rates are far below what this hardware gives idle, and latencies include that wait. The systems ran interleaved, so their ratios are the comparable figures.`,
      );
    }
    return {
      scenario: "postgres",
      title: `PostgreSQL: ${tp.jobs.toLocaleString("en-US")} no-op tasks through roster's supervisor beside graphile-worker and pg-boss, pickup latency across hosts, claim rate by depth, one server, one run`,
      quick: ctx.quick,
      startedAt,
      durationMs: performance.now() - t0,
      params: { jobs: tp.jobs, repetitions: tp.reps, concurrency: THROUGHPUT_CONCURRENCY, postgres: info.version, serverSettings: info.settings, hosts: hosts === null ? "loopback" : hosts.hosts.map((h) => h.address) },
      figures: {
        throughput: tp.figures,
        latency: { p50Ms: lat.p50, p99Ms: lat.p99, maxMs: lat.max, idleCpuPercent: lat.idleCpu, pooled: lat.pooled, overNetns: hosts !== null },
        claimRate: claims.runs.map((r) => ({ depth: r.depth, batch: r.batch, claimsPerSec: summarize(r.loops.map((l) => l.claimsPerSec)), loops: r.loops, enqueueMs: r.enqueueMs, explain: r.explain })),
        claimRateDeepOverShallow: depthRatio,
        ...(prof === null ? {} : { profiledRun: { jobsPerSec: prof.jobsPerSec, statements: prof.statements } }),
      },
      tables: [tp.table, ...(tp.txTable === null ? [] : [tp.txTable]), ...(prof?.tables ?? []), latencyTable, claimTable],
      targets,
      notes,
      skipped,
    };
  } finally {
    await server.stop();
    hosts?.remove();
  }
}

export const postgresScenario: Scenario = {
  name: "postgres",
  description: "PostgreSQL: 20,000 no-op tasks, roster's supervisor beside graphile-worker and pg-boss; pickup latency across hosts (netns); claim rate at 10k/1M queued",
  run,
};
