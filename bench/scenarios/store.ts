/**
 * `store`: claim+complete at 10k, 100k and 1M queued, single and batched, beside a raw
 * better-sqlite3 baseline. The measures and their table belong to bench/store.ts
 * (runStoreBench); this scenario calls it with the harness's command and files its
 * section and figures with the others.
 */
import { runStoreBench } from "../store.js";
import type { Scenario, ScenarioContext, ScenarioResult } from "./support/types.js";

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const result = await runStoreBench({
    quick: ctx.quick,
    log: ctx.log,
    // The harness writes the section (with the harness's command); runStoreBench only measures.
    resultsPath: null,
    command: `npm run bench -- store${ctx.quick ? " --quick" : ""}`,
  });
  const { markdown, ...figures } = result;
  const ratio = result.depthRatio;
  return {
    scenario: "store",
    title: "Store claim+complete by queue depth, single and batched, beside raw better-sqlite3 (bench/store.ts)",
    quick: ctx.quick,
    startedAt,
    durationMs: performance.now() - t0,
    params: { batchSize: result.batchSize },
    figures: figures as unknown as Record<string, unknown>,
    tables: [],
    markdown,
    targets: (["single", "batched"] as const).map((mode) => ({
      name: `claim rate, deepest ÷ shallowest queue, ${mode}`,
      target: "≥ 0.8×",
      value: `${ratio[mode].toFixed(2)}×`,
      met: ctx.quick ? null : ratio[mode] >= 0.8,
    })),
    notes: [],
    skipped: [],
  };
}

export const storeScenario: Scenario = {
  name: "store",
  description: "store claim+complete at 10k/100k/1M queued, single and batched, beside raw better-sqlite3 (bench/store.ts)",
  run,
};
