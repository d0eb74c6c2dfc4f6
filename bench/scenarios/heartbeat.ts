/**
 * `heartbeat`: 1,000 running tasks; write transactions the supervisor commits per
 * lease-renewal tick, counted through the store's onTransaction hook (DESIGN: one
 * statement renews every lease an agent holds).
 */
import { runInChild } from "./support/child.js";
import { benchModule } from "./support/paths.js";
import { fmt, fmtSummary, summarize } from "./support/stats.js";
import { inRunDir } from "./support/systems.js";
import type { Scenario, ScenarioContext, ScenarioResult } from "./support/types.js";
import type { HeartbeatRun } from "./supervised-child.js";

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const sizes = ctx.quick ? [100] : [10, 100, 1_000];
  const leaseMs = ctx.quick ? 900 : 1_500;
  const ticks = ctx.quick ? 3 : 10;
  const runs: HeartbeatRun[] = [];
  for (const tasks of sizes) {
    const r = await inRunDir(ctx, "heartbeat", (dir) =>
      runInChild<HeartbeatRun>({ modulePath: benchModule("scenarios/supervised-child"), fn: "heartbeatRun", args: { dir, tasks, leaseMs, ticks } }),
    );
    runs.push(r);
    ctx.log(`${tasks} running: ${r.writeTransactions} write transactions over ${ticks} ticks (${fmt(r.perTick, 2)} per tick) ${JSON.stringify(r.byName)}`);
  }
  const largest = runs[runs.length - 1]!;
  return {
    scenario: "heartbeat",
    title: "Write transactions per lease-renewal tick while tasks run, by the number of running tasks",
    quick: ctx.quick,
    startedAt,
    durationMs: performance.now() - t0,
    params: { sizes, leaseMs, tickMs: leaseMs / 3, ticksCounted: ticks },
    figures: { runs, perTickAtLargest: summarize([largest.perTick]) },
    tables: [
      {
        columns: ["running tasks", "window, ms", "renewal ticks", "write transactions", "per tick", "by transaction name"],
        rows: runs.map((r) => [
          r.running.toLocaleString("en-US"),
          fmt(r.windowMs),
          String(r.ticks),
          String(r.writeTransactions),
          fmtSummary(summarize([r.perTick]), 2),
          Object.entries(r.byName)
            .map(([k, v]) => `${k} ${v}`)
            .join(", ") || "none",
        ]),
      },
    ],
    targets: [
      {
        name: `write transactions per tick at ${largest.running.toLocaleString("en-US")} running`,
        target: "≤ 1, whatever the number running",
        value: fmt(largest.perTick, 2),
        met: ctx.quick ? null : runs.every((r) => r.perTick <= 1),
      },
    ],
    notes: [
      `Each size is a fresh supervisor process whose persona has leaseMs ${leaseMs} (a renewal every ${fmt(leaseMs / 3)} ms) and \`sleep\` tasks long enough to outlast the window; once every task has started, and one more tick has passed, every write transaction of the supervisor's store is counted over ${ticks} ticks. Nothing else should write then: no claims (all running), no completions.`,
    ],
    skipped: [],
  };
}

export const heartbeatScenario: Scenario = {
  name: "heartbeat",
  description: "10, 100 and 1,000 running tasks: write transactions per lease-renewal tick (store's onTransaction hook)",
  run,
};
