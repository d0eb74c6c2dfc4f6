/**
 * `throughput`: 20,000 no-op tasks through roster's real supervisor at synchronous
 * NORMAL and FULL, beside the minimal inline loop and the peers (BullMQ, plainjob),
 * round by round in one run, so the ratios compare figures taken side by side.
 */
import { availableParallelism } from "node:os";
import type { QueueRun } from "../peers/types.js";
import { runInChild } from "./support/child.js";
import { benchModule } from "./support/paths.js";
import { profileRun, profileTables } from "./support/profiled.js";
import { fmt, fmtRatio, fmtSummary, summarize } from "./support/stats.js";
import { inRunDir, preparePeers, runInline } from "./support/systems.js";
import type { Scenario, ScenarioContext, ScenarioResult, Skipped, Table, TargetCheck } from "./support/types.js";
import type { SupervisedRun } from "./supervised-child.js";

export const THROUGHPUT_JOBS = 20_000;
export const THROUGHPUT_CONCURRENCY = 256;

type Row = { system: string; runs: Array<QueueRun | SupervisedRun> };

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const jobs = ctx.quick ? 500 : THROUGHPUT_JOBS;
  const reps = ctx.quick ? 1 : 3;
  const concurrency = THROUGHPUT_CONCURRENCY;
  const skipped: Skipped[] = [];
  const rows = new Map<string, Row>();
  const add = (system: string, r: QueueRun | SupervisedRun) => {
    const row = rows.get(system) ?? { system, runs: [] };
    row.runs.push(r);
    rows.set(system, row);
  };
  const supervised = (synchronous: "NORMAL" | "FULL") =>
    inRunDir(ctx, `supervisor-${synchronous}`, (dir) =>
      runInChild<SupervisedRun>({ modulePath: benchModule("scenarios/supervised-child"), fn: "throughputRun", args: { dir, jobs, concurrency, synchronous } }),
    );
  const peers = await preparePeers(ctx, ["BullMQ", "plainjob"]);
  skipped.push(...peers.skipped);
  const broken = new Set<string>();
  const attempt = async (system: string, body: () => Promise<QueueRun | SupervisedRun>) => {
    if (broken.has(system)) return;
    try {
      const r = await body();
      add(system, r);
      ctx.log(`  ${system}: ${fmt(r.jobsPerSec)} jobs/s`);
    } catch (error) {
      broken.add(system);
      skipped.push({ what: system, reason: `not runnable: ${(error as Error).message.split("\n")[0]}` });
      ctx.log(`  ${system}: FAILED ${(error as Error).message}`);
    }
  };
  try {
    for (let rep = 0; rep < reps; rep++) {
      ctx.log(`round ${rep + 1}/${reps}, ${jobs} jobs each`);
      await attempt("roster supervisor, synchronous=NORMAL", () => supervised("NORMAL"));
      await attempt("roster supervisor, synchronous=FULL", () => supervised("FULL"));
      await attempt("minimal inline loop", () => runInline(ctx, jobs, concurrency));
      for (const peer of peers.available) await attempt(peer, () => peers.run(peer, jobs, concurrency));
    }
  } finally {
    await peers.stop();
  }

  const rate = (system: string) => summarize(rows.get(system)?.runs.map((r) => r.jobsPerSec) ?? []);
  const roster = rate("roster supervisor, synchronous=NORMAL");
  const figures: Record<string, unknown> = {};
  const table: Table = { columns: ["system", "jobs/s", "roster NORMAL ÷ this", "peak RSS, MB", "settings"], rows: [] };
  for (const row of rows.values()) {
    const r = summarize(row.runs.map((x) => x.jobsPerSec));
    const ratio = roster.runs > 0 ? roster.median / r.median : Number.NaN;
    // Per-round ratios show how stable the comparison is.
    const perRound = row.runs.map((x, i) => {
      const mine = rows.get("roster supervisor, synchronous=NORMAL")?.runs[i];
      return mine === undefined ? Number.NaN : mine.jobsPerSec / x.jobsPerSec;
    });
    const ratioSummary = summarize(perRound.filter(Number.isFinite));
    figures[row.system] = { jobsPerSec: r, peakRssMb: summarize(row.runs.map((x) => x.peakRssMb)), rosterNormalOverThis: ratioSummary, settings: row.runs[0]!.settings };
    const settings = Object.entries(row.runs[0]!.settings)
      .filter(([k]) => k !== "note")
      .map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
      .join(", ");
    table.rows.push([
      row.system,
      fmtSummary(r),
      row.system.startsWith("roster supervisor, synchronous=NORMAL") ? "1.00×" : `${fmtRatio(ratio)}${ratioSummary.runs > 1 ? ` (${fmtRatio(ratioSummary.min)}–${fmtRatio(ratioSummary.max)} by round)` : ""}`,
      fmtSummary(summarize(row.runs.map((x) => x.peakRssMb))),
      settings,
    ]);
  }
  const ratioTarget = (name: string, system: string, wanted: number): TargetCheck => {
    const other = rate(system);
    const value = roster.runs > 0 && other.runs > 0 ? roster.median / other.median : Number.NaN;
    return {
      name,
      target: `≥ ${wanted}×`,
      value: Number.isFinite(value) ? `${fmtRatio(value)} (${fmt(roster.median)} vs ${fmt(other.median)} jobs/s)` : "not measured",
      met: ctx.quick || !Number.isFinite(value) ? null : value >= wanted,
    };
  };
  const targets = [
    ratioTarget("roster ÷ BullMQ", "BullMQ", 1.5),
    ratioTarget("roster ÷ plainjob", "plainjob", 2),
    ratioTarget("roster ÷ minimal inline loop", "minimal inline loop", 0.5),
  ];
  const notes = [
    `Every run is a fresh child process and a fresh database (or Redis queue): ${jobs.toLocaleString("en-US")} no-op jobs enqueued first, then processing timed from the start of the consumer until the last job is recorded done. ${reps} round(s), systems interleaved within each round; median (min–max). roster runs the built-in \`echo\` adapter in piscina worker threads with every DESIGN rule on (claims fenced by lease tokens, start and completion events in task_events, dependency counters, batched claims and completions); the inline loop and the peers run their handler inline on the main thread.`,
  ];
  const tables = [table];
  // What the supervisor asked of SQLite, per 1,000 tasks (first round's NORMAL and FULL runs).
  const txRows: string[][] = [];
  for (const system of ["roster supervisor, synchronous=NORMAL", "roster supervisor, synchronous=FULL"]) {
    const first = rows.get(system)?.runs[0] as SupervisedRun | undefined;
    if (first?.transactions === undefined) continue;
    for (const [name, t] of Object.entries(first.transactions).sort((a, b) => b[1].ms - a[1].ms)) {
      txRows.push([system.replace("roster supervisor, ", ""), name, fmt((t.count / jobs) * 1000, 1), fmt(t.ms / t.count, 3), fmt(t.ms)]);
    }
  }
  const firstNormal = rows.get("roster supervisor, synchronous=NORMAL")?.runs[0] as SupervisedRun | undefined;
  if (firstNormal?.transactions !== undefined) {
    const tx = Object.values(firstNormal.transactions);
    const txMs = tx.reduce((a, t) => a + t.ms, 0);
    const perTaskUs = (txMs / jobs) * 1000;
    notes.push(
      `Bound (first NORMAL round): ${fmt((txMs / firstNormal.processMs) * 100, 0)} % of the processing wall time was spent inside the supervisor's write transactions, one after another on its main thread: ${fmt(perTaskUs, 0)} µs of SQLite work per task, a ceiling of about ${fmt(1e6 / perTaskUs)} tasks/s even with free worker threads. The inline loop does its claim and complete in about ${fmt(rate("minimal inline loop").runs > 0 ? 1e6 / rate("minimal inline loop").median : Number.NaN, 0)} µs per task in all.`,
    );
  }
  // CPU per task by thread, and how much of the machine the run used: the ceiling when all of it is busy.
  const cpuRows: string[][] = [];
  const cores = availableParallelism();
  for (const system of ["roster supervisor, synchronous=NORMAL", "roster supervisor, synchronous=FULL"]) {
    const runs = (rows.get(system)?.runs ?? []) as SupervisedRun[];
    const withCpu = runs.filter((r) => r.cpu !== undefined);
    if (withCpu.length === 0) continue;
    const main = summarize(withCpu.map((r) => r.cpu!.mainUsPerTask));
    const other = summarize(withCpu.map((r) => r.cpu!.otherUsPerTask));
    const busy = summarize(withCpu.map((r) => ((r.cpu!.mainUsPerTask + r.cpu!.otherUsPerTask) * r.jobs) / 1000 / r.processMs));
    const ceiling = (cores * 1e6) / (main.median + other.median);
    figures[`${system} cpu`] = { mainUsPerTask: main, otherUsPerTask: other, coresBusy: busy, ceilingJobsPerSec: ceiling };
    cpuRows.push([system.replace("roster supervisor, ", ""), fmtSummary(main), fmtSummary(other), fmt(main.median + other.median, 1), `${fmt(busy.median, 2)} of ${cores}`, fmt(ceiling)]);
  }
  if (cpuRows.length > 0) {
    tables.push({
      caption: "CPU time per task while processing, by thread (from /proc/self/task, 10 ms ticks; median of rounds): the main thread claims, settles and dispatches; the other threads are the worker threads running the adapter and V8's compiler and GC helpers. The ceiling is the machine's cores divided by the CPU a task takes, the rate if every core were busy with nothing else:",
      columns: ["synchronous", "main thread, µs a task", "other threads, µs a task", "in all", "cores busy", "ceiling, tasks/s"],
      rows: cpuRows,
    });
  }
  if (txRows.length > 0) {
    figures.transactions = Object.fromEntries(
      ["roster supervisor, synchronous=NORMAL", "roster supervisor, synchronous=FULL"].map((k) => [k, (rows.get(k)?.runs[0] as SupervisedRun | undefined)?.transactions ?? null]),
    );
    tables.push({
      caption: "Write transactions the supervisor's store committed while processing (first round), from the store's onTransaction hook:",
      columns: ["synchronous", "transaction", "per 1,000 tasks", "ms each", "ms in all"],
      rows: txRows,
    });
  }
  if (!ctx.quick && !broken.has("roster supervisor, synchronous=NORMAL")) {
    ctx.log("profiling one more supervisor run (NORMAL) with --cpu-prof");
    try {
      const profiled = await profileRun(ctx, {
        modulePath: benchModule("scenarios/supervised-child"),
        fn: "throughputRun",
        args: (dir) => ({ dir, jobs, concurrency, synchronous: "NORMAL" }),
      });
      figures.profile = profiled.summaries.slice(0, 3);
      const pr = profiled.result as SupervisedRun;
      tables.push(...profileTables(`one extra roster NORMAL run under --cpu-prof (enqueue and processing), ${fmt(pr.jobsPerSec)} jobs/s; not in the figures above`, profiled.summaries));
      const [main, ...workers] = profiled.summaries;
      if (main !== undefined) {
        const workerBusy = workers.reduce((a, w) => a + w.busyMs, 0);
        const workerTotal = workers.reduce((a, w) => a + w.totalMs, 0);
        notes.push(
          `Where the time goes (profiled run): the busiest thread was busy ${fmt((main.busyMs / main.totalMs) * 100, 0)} % of its ${fmt(main.totalMs)} ms; the other ${workers.length} thread(s) together ${fmt(workerTotal > 0 ? (workerBusy / workerTotal) * 100 : 0, 0)} % (idle waiting in Atomics.wait is not counted as busy). A run whose busiest thread is near 100 % while the worker threads idle is bound by that thread's own work, listed in its table above.`,
        );
      }
    } catch (error) {
      notes.push(`The profiled run failed: ${(error as Error).message}`);
    }
  }
  return {
    scenario: "throughput",
    title: `${jobs.toLocaleString("en-US")} no-op tasks through the real supervisor (worker threads) at synchronous NORMAL and FULL, beside the minimal inline loop, BullMQ and plainjob, in one run`,
    quick: ctx.quick,
    startedAt,
    durationMs: performance.now() - t0,
    params: { jobs, repetitions: reps, concurrency, redis: peers.redisVersion },
    figures,
    tables,
    targets,
    notes,
    skipped,
  };
}

export const throughputScenario: Scenario = {
  name: "throughput",
  description: "20,000 no-op tasks: roster's supervisor (NORMAL, FULL) beside the inline loop, BullMQ and plainjob, same run",
  run,
};
