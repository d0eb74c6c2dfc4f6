/**
 * `soak`: 1,000,000 no-op tasks through the supervisor (a few thousand with --quick):
 * the throughput of the last tenth over the first, and RSS over time, as the events and
 * tasks tables grow.
 */
import { runInChild } from "./support/child.js";
import { benchModule } from "./support/paths.js";
import { fmt, fmtRatio } from "./support/stats.js";
import { inRunDir } from "./support/systems.js";
import type { Scenario, ScenarioContext, ScenarioResult } from "./support/types.js";
import type { SoakRun } from "./supervised-child.js";

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const tasks = ctx.quick ? 3_000 : 1_000_000;
  const concurrency = 256;
  const r = await inRunDir(ctx, "soak", (dir) =>
    runInChild<SoakRun>({ modulePath: benchModule("scenarios/supervised-child"), fn: "soakRun", args: { dir, tasks, concurrency }, timeoutMs: 60 * 60_000 }),
  );
  ctx.log(`tenths (jobs/s): ${r.tenthsJobsPerSec.map((x) => fmt(x)).join(", ")}; last/first ${fmtRatio(r.lastOverFirst)}`);
  // RSS over time, thinned to at most ~12 points for the table.
  const step = Math.max(1, Math.ceil(r.rss.length / 12));
  const rssPoints = r.rss.filter((_, i) => i % step === 0 || i === r.rss.length - 1);
  return {
    scenario: "soak",
    title: `${tasks.toLocaleString("en-US")} no-op tasks through the supervisor: throughput by tenth, and RSS over time`,
    quick: ctx.quick,
    startedAt,
    durationMs: performance.now() - t0,
    params: { tasks, concurrency, repetitions: 1 },
    figures: { ...r, rss: r.rss },
    tables: [
      {
        caption: `Enqueue of all ${tasks.toLocaleString("en-US")} tasks (batches of 10,000) took ${fmt(r.enqueueMs / 1000)} s; processing ${fmt(r.totalMs / 1000)} s.`,
        columns: ["tenth", "seconds", "jobs/s"],
        rows: r.tenthsSec.map((s, i) => [String(i + 1), fmt(s, 2), fmt(r.tenthsJobsPerSec[i]!)]),
      },
      {
        columns: ["seconds since start", "RSS, MB"],
        rows: rssPoints.map(([ms, mb]) => [fmt(ms / 1000, 0), fmt(mb)]),
      },
    ],
    targets: [{ name: "last tenth ÷ first tenth", target: "≥ 0.8×", value: fmtRatio(r.lastOverFirst), met: ctx.quick ? null : r.lastOverFirst >= 0.8 }],
    notes: [
      "One run (it is long). All tasks are enqueued first, then the supervisor is started; tenths are timed from the first completion, so thread start-up is in none of them. RSS is sampled every second in the supervisor's process.",
    ],
    skipped: [],
  };
}

export const soakScenario: Scenario = {
  name: "soak",
  description: "1,000,000 no-op tasks through the supervisor: last tenth's throughput over the first, RSS over time",
  run,
};
