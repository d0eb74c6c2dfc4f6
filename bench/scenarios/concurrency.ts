/**
 * `concurrency`: 1,000 tasks of `sleep 1000 ms` at concurrency 1,000 through the
 * supervisor: wall time over the ideal 1 s, and peak RSS of the whole process.
 */
import { runInChild } from "./support/child.js";
import { benchModule } from "./support/paths.js";
import { fmt, fmtRatio, fmtSummary, summarize } from "./support/stats.js";
import { inRunDir } from "./support/systems.js";
import type { Scenario, ScenarioContext, ScenarioResult } from "./support/types.js";
import type { ConcurrencyRun } from "./supervised-child.js";

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const tasks = ctx.quick ? 50 : 1_000;
  const sleepMs = ctx.quick ? 200 : 1_000;
  const reps = ctx.quick ? 1 : 3;
  const runs: ConcurrencyRun[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const r = await inRunDir(ctx, "concurrency", (dir) =>
      runInChild<ConcurrencyRun>({ modulePath: benchModule("scenarios/supervised-child"), fn: "concurrencyRun", args: { dir, tasks, sleepMs, concurrency: tasks } }),
    );
    runs.push(r);
    ctx.log(`rep ${rep + 1}/${reps}: wall ${fmt(r.wallMs)} ms, peak RSS ${fmt(r.peakRssMb)} MB`);
  }
  const ratio = summarize(runs.map((r) => r.wallMs / sleepMs));
  const wall = summarize(runs.map((r) => r.wallMs));
  const rss = summarize(runs.map((r) => r.peakRssMb));
  const rssStart = summarize(runs.map((r) => r.rssAtStartMb));
  return {
    scenario: "concurrency",
    title: `${tasks.toLocaleString("en-US")} tasks of sleep ${sleepMs} ms at concurrency ${tasks.toLocaleString("en-US")}: wall time over the ideal, and peak RSS`,
    quick: ctx.quick,
    startedAt,
    durationMs: performance.now() - t0,
    params: { tasks, sleepMs, concurrency: tasks, repetitions: reps, settings: runs[0]?.settings },
    figures: { wallMs: wall, wallOverIdeal: ratio, peakRssMb: rss, idleRssMb: rssStart },
    tables: [
      {
        columns: ["measure", "value"],
        rows: [
          ["wall time, enqueue → last completion, ms", fmtSummary(wall)],
          [`wall ÷ ideal (${sleepMs} ms)`, ratio.runs > 1 ? `${fmtRatio(ratio.median)} (${fmtRatio(ratio.min)}–${fmtRatio(ratio.max)})` : fmtRatio(ratio.median)],
          ["peak RSS of the supervisor's process (threads included), MB", fmtSummary(rss)],
          ["RSS of the idle supervisor before the batch, MB", fmtSummary(rssStart)],
        ],
      },
    ],
    targets: [
      { name: "wall ÷ ideal", target: "≤ 1.15×", value: fmtRatio(ratio.median), met: ctx.quick ? null : ratio.median <= 1.15 },
      { name: "peak RSS", target: "≤ 200 MB", value: `${fmt(rss.median)} MB`, met: ctx.quick ? null : rss.median <= 200 },
    ],
    notes: [
      `Effective parallelism: ${tasks.toLocaleString("en-US")} × ${sleepMs} ms of sleeping done in ${fmt(wall.median)} ms is ${fmt((tasks * sleepMs) / wall.median, 1)} tasks at once on average (${tasks.toLocaleString("en-US")} would be ideal; the pool has ${String((runs[0]?.settings as { threads?: number } | undefined)?.threads ?? "?")} worker threads).`,
      "The supervisor is started on an empty database and left to settle; then the whole batch is enqueued in one transaction in the same process, and the wall time runs from that enqueue until the store reports the last completion. Peak RSS is the process's maxRSS (the OS's figure) and 20 ms samples, whichever is higher.",
    ],
    skipped: [],
  };
}

export const concurrencyScenario: Scenario = {
  name: "concurrency",
  description: "1,000 × sleep 1000 ms at concurrency 1,000: wall time over the ideal 1 s, peak RSS",
  run,
};
