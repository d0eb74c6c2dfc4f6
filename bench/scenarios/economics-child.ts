/**
 * The `economics` scenario's measured run, in a child process of its own: N tasks of
 * one goal through the real supervisor, with or without every economic gate
 * configured (docs/economics.md), timed from the supervisor's start until the last
 * completes. Variants:
 * - `echo`: the throughput scenario's no-op (echo adapter, no usage, no gates);
 * - `usage`: a module adapter whose result carries usage (recorded and priced per attempt), no gates;
 * - `gated`: the same adapter, and a global and a persona budget per day, a goal budget,
 *   each task's own policy.maxCostUsd, a concurrency key per task (64 keys, limit 1,000:
 *   counted on every start and end, never full), a breaker, a rate limit and a provider
 *   account on the persona — none of them reached, so the figures price the checks.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { openStore, type Store, type TaskInput } from "../../src/store/index.js";
import { sampleRss } from "./support/resources.js";
import { startBenchSupervisor } from "./support/supervisor.js";

export const ECONOMICS_VARIANTS = ["echo", "usage", "gated"] as const;
export type EconomicsVariant = (typeof ECONOMICS_VARIANTS)[number];

/** Limits far above what the run spends: the gates are checked on every claim and settlement, never closed. */
const NEVER_USD = 1_000_000;
const KEYS = 64;
const ENQUEUE_CHUNK = 10_000;

export interface EconomicsRun {
  variant: EconomicsVariant;
  jobs: number;
  processMs: number;
  jobsPerSec: number;
  peakRssMb: number;
  /** Usage rows written (the usage and gated variants: one per task). */
  usageRows: number;
  settings: Record<string, unknown>;
  transactions: Record<string, { count: number; ms: number }>;
}

function writePersonaFile(dir: string, variant: EconomicsVariant, concurrency: number): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "spend.mjs"),
    'export function run(task) {\n  return { i: task.payload.i, usage: { model: "bench-model", inputTokens: 120, outputTokens: 30, costUsd: 0.0001 } };\n}\n',
  );
  const front: Record<string, unknown> = {
    id: "noop",
    name: "noop",
    adapter: variant === "echo" ? { kind: "echo" } : { kind: "module", path: "./spend.mjs" },
    concurrency,
    leaseMs: 30_000,
    timeoutMs: 60_000,
    retry: { maxAttempts: 3, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 },
  };
  if (variant === "gated") {
    front.provider = "bench-account";
    front.breaker = { failures: 1_000, cooldownMs: 60_000 };
    front.rateLimit = { starts: 10_000_000, perMs: 1_000, key: "bench-account" };
  }
  writeFileSync(join(dir, "noop.md"), `---\n${stringify(front)}---\nA benchmark persona.\n`);
}

/** Enqueues the goal (a root held back an hour, so it never runs) and `jobs` children; returns the goal's id. */
async function enqueueGoal(store: Store, variant: EconomicsVariant, jobs: number): Promise<number> {
  const now = Date.now();
  const { ids } = await store.tasks.enqueue({ tasks: [{ persona: "noop", title: "the goal", delayMs: 3_600_000 }], now });
  const root = ids[0]!;
  if (variant === "gated") {
    await store.economics.setBudget({ scope: "global", key: "", window: "day", maxCostUsd: NEVER_USD, now });
    await store.economics.setBudget({ scope: "persona", key: "noop", window: "day", maxCostUsd: NEVER_USD, maxTokens: 1e12, now });
    await store.economics.setBudget({ scope: "goal", key: String(root), maxCostUsd: NEVER_USD, now });
  }
  for (let i = 0; i < jobs; i += ENQUEUE_CHUNK) {
    const tasks: TaskInput[] = [];
    for (let j = i; j < Math.min(jobs, i + ENQUEUE_CHUNK); j++) {
      tasks.push({
        persona: "noop",
        title: `bench ${j}`,
        payload: { i: j },
        ...(variant === "gated" ? { policy: { maxCostUsd: 1, concurrencyKey: `key-${j % KEYS}`, concurrencyLimit: 1_000 } } : {}),
      });
    }
    await store.tasks.enqueue({ tasks, parentId: root, now: Date.now() });
  }
  return root;
}

function completions(store: Store, count: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = 0;
    const offs = [
      store.events.on("task:completed", () => {
        if (++done === count) {
          for (const off of offs) off();
          resolve(performance.now());
        }
      }),
      store.events.on("task:failed", (e) => reject(new Error(`task ${e.taskId} failed during the benchmark`))),
      store.events.on("task:retrying", (e) => reject(new Error(`task ${e.taskId} was retried during the benchmark`))),
    ];
  });
}

/** `dbUrl`: a fresh PostgreSQL database to run on instead of a SQLite file in `dir` (issue 19: the gates on PostgreSQL). */
export async function economicsRun(args: { dir: string; jobs: number; concurrency: number; variant: EconomicsVariant; dbUrl?: string }): Promise<EconomicsRun> {
  const rss = sampleRss();
  const personasDir = join(args.dir, "personas");
  writePersonaFile(personasDir, args.variant, args.concurrency);
  const dbPath = args.dbUrl ?? join(args.dir, "roster.db");
  const seed = await openStore({ path: dbPath });
  try {
    const { loadPersonaDir, toPersonaUpsert } = await import("../../src/personas/load.js");
    await seed.personas.sync({ personas: loadPersonaDir(personasDir).map(toPersonaUpsert), now: Date.now() });
    await enqueueGoal(seed, args.variant, args.jobs);
  } finally {
    await seed.close();
  }
  const transactions: Record<string, { count: number; ms: number }> = {};
  let counting = true;
  const t0 = performance.now();
  const supervisor = await startBenchSupervisor({
    dbPath,
    personasDir,
    concurrency: args.concurrency,
    onTransaction: (name, ms) => {
      if (!counting) return;
      const t = (transactions[name] ??= { count: 0, ms: 0 });
      t.count++;
      t.ms += ms;
    },
  });
  const end = await completions(supervisor.store, args.jobs);
  counting = false;
  const processMs = end - t0;
  const usageRows = (await supervisor.store.economics.total()).attempts;
  await supervisor.stop();
  return {
    variant: args.variant,
    jobs: args.jobs,
    processMs,
    jobsPerSec: (args.jobs / processMs) * 1000,
    peakRssMb: rss.stop().peakRssMb,
    usageRows,
    settings: { ...supervisor.settings, concurrency: args.concurrency },
    transactions,
  };
}
