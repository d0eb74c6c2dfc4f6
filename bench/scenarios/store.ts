/**
 * `store`: claim+complete at 10k, 100k and 1M queued, single and batched, beside a raw
 * better-sqlite3 baseline. The measures belong to bench/store.ts (runStoreBench, owned
 * by the store's benchmark); this scenario only calls it and files its section.
 */
import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { benchModule } from "./support/paths.js";
import type { Scenario, ScenarioContext, ScenarioResult, Table } from "./support/types.js";

type StoreBench = (options: Record<string, unknown>) => Promise<unknown>;

function isScenarioResult(value: unknown): value is ScenarioResult {
  return value !== null && typeof value === "object" && Array.isArray((value as ScenarioResult).tables);
}

async function run(ctx: ScenarioContext): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const modulePath = benchModule("store");
  const base: ScenarioResult = {
    scenario: "store",
    title: "Store claim+complete at 10k, 100k and 1M queued, single and batched, beside raw better-sqlite3 (bench/store.ts)",
    quick: ctx.quick,
    startedAt,
    durationMs: 0,
    params: {},
    figures: {},
    tables: [],
    targets: [],
    notes: [],
    skipped: [],
  };
  const runStoreBench = existsSync(modulePath)
    ? ((await import(pathToFileURL(modulePath).href)) as { runStoreBench?: StoreBench }).runStoreBench
    : undefined;
  if (typeof runStoreBench !== "function") {
    const reason = "bench/store.ts does not export runStoreBench yet";
    return {
      ...base,
      durationMs: performance.now() - t0,
      figures: { available: false, reason },
      tables: [{ columns: ["measure", "value"], rows: [["store benchmark", `not run: ${reason}`]] }],
      skipped: [{ what: "store", reason }],
    };
  }
  const out = await runStoreBench({ quick: ctx.quick, workDir: ctx.workDir, log: ctx.log, rootDir: ctx.rootDir });
  if (isScenarioResult(out)) {
    return { ...base, ...out, scenario: "store", quick: ctx.quick, startedAt, durationMs: performance.now() - t0, targets: out.targets ?? [], notes: out.notes ?? [], skipped: out.skipped ?? [], params: out.params ?? {} };
  }
  // Any other shape: its figures as JSON, and a flat table of its top-level numbers.
  const figures = (out !== null && typeof out === "object" ? out : { value: out }) as Record<string, unknown>;
  const table: Table = {
    columns: ["figure", "value"],
    rows: Object.entries(figures).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)]),
  };
  return { ...base, durationMs: performance.now() - t0, figures, tables: [table] };
}

export const storeScenario: Scenario = {
  name: "store",
  description: "store claim+complete at 10k/100k/1M queued, single and batched, beside raw better-sqlite3 (bench/store.ts)",
  run,
};
