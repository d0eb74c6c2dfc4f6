/**
 * `economics`: the throughput run with and without issue 16's gates, side by side,
 * round by round (variants interleaved within each round), so the ratio compares
 * figures taken under the same machine load. Target: the run with budgets, keys and
 * limits all configured within 20 % of the same run without them.
 */
import { ECONOMICS_VARIANTS, type EconomicsRun, type EconomicsVariant } from "./economics-child.js";
import { runInChild } from "./support/child.js";
import { benchModule } from "./support/paths.js";
import { fmt, fmtRatio, fmtSummary, summarize } from "./support/stats.js";
import { inRunDir } from "./support/systems.js";
import type { Scenario, ScenarioContext, ScenarioResult, Table } from "./support/types.js";
import { THROUGHPUT_CONCURRENCY, THROUGHPUT_JOBS } from "./throughput.js";

const LABELS: Record<EconomicsVariant, string> = {
  echo: "echo, no usage, no gates (the throughput run)",
  usage: "usage recorded per attempt, no gates",
  gated: "usage + budgets (global, persona, goal, task) + concurrency keys + breaker + rate limit + provider",
};

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const jobs = ctx.quick ? 500 : THROUGHPUT_JOBS;
  const reps = ctx.quick ? 1 : 3;
  const concurrency = THROUGHPUT_CONCURRENCY;
  const runs = new Map<EconomicsVariant, EconomicsRun[]>(ECONOMICS_VARIANTS.map((v) => [v, []]));
  for (let rep = 0; rep < reps; rep++) {
    ctx.log(`round ${rep + 1}/${reps}, ${jobs} jobs each`);
    for (const variant of ECONOMICS_VARIANTS) {
      const r = await inRunDir(ctx, `economics-${variant}`, (dir) =>
        runInChild<EconomicsRun>({ modulePath: benchModule("scenarios/economics-child"), fn: "economicsRun", args: { dir, jobs, concurrency, variant } }),
      );
      runs.get(variant)!.push(r);
      ctx.log(`  ${variant}: ${fmt(r.jobsPerSec)} jobs/s`);
    }
  }
  const rate = (v: EconomicsVariant) => summarize(runs.get(v)!.map((r) => r.jobsPerSec));
  const perRound = (v: EconomicsVariant, base: EconomicsVariant) => summarize(runs.get(v)!.map((r, i) => r.jobsPerSec / runs.get(base)![i]!.jobsPerSec));
  const table: Table = { columns: ["variant", "jobs/s", "÷ usage, no gates", "÷ echo", "usage rows", "peak RSS, MB"], rows: [] };
  const figures: Record<string, unknown> = {};
  for (const v of ECONOMICS_VARIANTS) {
    const r = rate(v);
    const overUsage = perRound(v, "usage");
    const overEcho = perRound(v, "echo");
    figures[v] = { jobsPerSec: r, overUsage, overEcho, usageRows: runs.get(v)![0]!.usageRows, peakRssMb: summarize(runs.get(v)!.map((x) => x.peakRssMb)) };
    table.rows.push([
      LABELS[v],
      fmtSummary(r),
      `${fmtRatio(r.median / rate("usage").median)}${overUsage.runs > 1 ? ` (${fmtRatio(overUsage.min)}–${fmtRatio(overUsage.max)} by round)` : ""}`,
      `${fmtRatio(r.median / rate("echo").median)}${overEcho.runs > 1 ? ` (${fmtRatio(overEcho.min)}–${fmtRatio(overEcho.max)} by round)` : ""}`,
      String(runs.get(v)![0]!.usageRows),
      fmtSummary(summarize(runs.get(v)!.map((x) => x.peakRssMb))),
    ]);
  }
  const txRows: string[][] = [];
  for (const v of ECONOMICS_VARIANTS) {
    const first = runs.get(v)![0]!;
    for (const name of ["tasks.claim", "tasks.settle", "tasks.settle+claim"]) {
      const t = first.transactions[name];
      if (t !== undefined) txRows.push([v, name, fmt((t.count / jobs) * 1000, 1), fmt(t.ms / t.count, 3), fmt(t.ms)]);
    }
  }
  const ratio = rate("gated").median / rate("usage").median;
  return {
    scenario: "economics",
    title: `${jobs.toLocaleString("en-US")} tasks of one goal through the real supervisor with and without issue 16's gates configured, side by side`,
    quick: ctx.quick,
    startedAt,
    durationMs: performance.now() - t0,
    params: { jobs, repetitions: reps, concurrency },
    figures,
    tables: [
      table,
      {
        caption: "The supervisor's claim and settlement transactions (first round), from the store's onTransaction hook:",
        columns: ["variant", "transaction", "per 1,000 tasks", "ms each", "ms in all"],
        rows: txRows,
      },
    ],
    targets: [
      {
        name: "gated ÷ ungated (both recording usage)",
        target: "≥ 0.80× (within 20 %)",
        value: `${fmtRatio(ratio)} (${fmt(rate("gated").median)} vs ${fmt(rate("usage").median)} jobs/s)`,
        met: ctx.quick ? null : ratio >= 0.8,
      },
    ],
    notes: [
      `Every run is a fresh child process and database: one goal (a root held back, so it never runs) and ${jobs.toLocaleString("en-US")} children enqueued first, then the supervisor (worker threads, concurrency ${concurrency}) timed from its start until the last child completes. ${reps} round(s), the three variants interleaved within each; median (min–max), ratios per round.`,
      "In the gated variant no gate is ever reached: every claim still reads the persona's gate row (provider pause, breaker, window budgets, rate window) and counts its starts in the rate window, every keyed start and end moves its key's count through the triggers, and every settlement records usage, adds it to the spend totals and rechecks the task's and the goal's budgets. A reached gate makes the claim cheaper (it takes nothing); a held task or a full key switches the claim to its skipping variant, which this run does not measure.",
      "The echo variant is the throughput scenario's run (no usage); the usage variant's adapter is a module returning usage with its result, so usage ÷ echo prices recording usage, and gated ÷ usage prices the gates.",
    ],
    skipped: [],
  };
}

export const economicsScenario: Scenario = {
  name: "economics",
  description: "throughput with and without budgets, concurrency keys, breaker, rate limit and provider configured, side by side",
  run,
};
