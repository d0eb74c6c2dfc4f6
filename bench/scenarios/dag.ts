/**
 * `dag`: the store's dependency work. One atomic batch of 10,000 tasks with 20,000
 * edges (validated whole, cycle-checked, written in one transaction); and one task with
 * 10,000 dependents completing: the dependents' unmet counters drop in the completing
 * transaction (docs/ARCHITECTURE.md rule 2), so they are all ready once it commits.
 */
import { runInChild } from "./support/child.js";
import { benchModule } from "./support/paths.js";
import { fmt, fmtSummary, summarize } from "./support/stats.js";
import { inRunDir } from "./support/systems.js";
import type { Scenario, ScenarioContext, ScenarioResult } from "./support/types.js";
import type { DagBatchRun, FanOutRun } from "./dag-child.js";

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const tasks = ctx.quick ? 1_000 : 10_000;
  const dependents = ctx.quick ? 1_000 : 10_000;
  const reps = ctx.quick ? 1 : 5;
  const batches: DagBatchRun[] = [];
  const fanOuts: FanOutRun[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const b = await inRunDir(ctx, "dag", (dir) => runInChild<DagBatchRun>({ modulePath: benchModule("scenarios/dag-child"), fn: "measureDagBatch", args: { dir, tasks } }));
    batches.push(b);
    const f = await inRunDir(ctx, "fanout", (dir) =>
      runInChild<FanOutRun>({ modulePath: benchModule("scenarios/dag-child"), fn: "measureFanOut", args: { dir, dependents } }),
    );
    fanOuts.push(f);
    ctx.log(`rep ${rep + 1}/${reps}: batch ${fmt(b.enqueueMs)} ms, ${dependents} dependents ready in ${fmt(f.completeMs)} ms`);
  }
  const batchMs = summarize(batches.map((b) => b.enqueueMs));
  const fanOutMs = summarize(fanOuts.map((f) => f.completeMs));
  const notifiedMs = summarize(fanOuts.map((f) => f.notifiedMs));
  const edges = batches[0]!.edges;
  return {
    scenario: "dag",
    title: `One atomic batch of ${tasks.toLocaleString("en-US")} tasks with ${edges.toLocaleString("en-US")} edges; one task with ${dependents.toLocaleString("en-US")} dependents completing`,
    quick: ctx.quick,
    startedAt,
    durationMs: performance.now() - t0,
    params: { tasks, edges, dependents, repetitions: reps, synchronous: "NORMAL" },
    figures: { batchMs, fanOutReadyMs: fanOutMs, fanOutNotifiedMs: notifiedMs, tasks, edges, dependents },
    tables: [
      {
        columns: ["measure", "ms", "per item"],
        rows: [
          [`enqueue ${tasks.toLocaleString("en-US")} tasks + ${edges.toLocaleString("en-US")} edges, one batch`, fmtSummary(batchMs), `${fmt((batchMs.median / tasks) * 1000, 1)} µs/task`],
          [`complete 1 task → ${dependents.toLocaleString("en-US")} dependents ready (commit)`, fmtSummary(fanOutMs), `${fmt((fanOutMs.median / dependents) * 1000, 1)} µs/dependent`],
          [`… until the store's task:completed notification`, fmtSummary(notifiedMs), ""],
        ],
      },
    ],
    targets: [
      { name: "dag batch", target: "≤ 1,000 ms", value: `${fmt(batchMs.median)} ms`, met: ctx.quick ? null : batchMs.median <= 1_000 },
      { name: "dependents ready after completion", target: "≤ 100 ms", value: `${fmt(fanOutMs.median)} ms`, met: ctx.quick ? null : fanOutMs.median <= 100 },
    ],
    notes: [
      `Through roster's store (openStore, synchronous=NORMAL, WAL) on a fresh file per repetition, each in its own process. The batch: two existing tasks, then tasks that each depend on two distinct tasks among the 100 before them (a deterministic pseudo-random DAG), validated whole and cycle-checked. The fan-out: a root and ${dependents.toLocaleString("en-US")} tasks depending on it, enqueued, the root claimed, then completeIfLeased timed; the dependents' pending count is checked after.`,
    ],
    skipped: [],
  };
}

export const dagScenario: Scenario = {
  name: "dag",
  description: "store: one batch of 10,000 tasks with 20,000 edges; 10,000 dependents readied by one completion",
  run,
};
