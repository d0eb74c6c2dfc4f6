/**
 * The store benchmark: claim + complete per task at several queue depths, through
 * roster's store, next to a raw better-sqlite3 baseline measured in the same run.
 *
 *   node dist/bench/store.js            10k, 100k and 1M queued tasks; writes the
 *                                       "## store" section of bench/RESULTS.md
 *   node dist/bench/store.js --quick    1k and 10k, a few seconds, prints only
 *   node dist/bench/store.js --out F    also write the section into F
 *
 * Modes, for both systems:
 *   single   one task per transaction: claim one (limit 1), then complete it — two
 *            write transactions per task, as a supervisor without batching would.
 *   batched  claim up to BATCH tasks in one statement, then complete them all in one
 *            transaction (the store's settle) — two transactions per BATCH tasks.
 * The baseline is the same operations on a minimal schema (one table, one partial
 * claim index, no audit rows, no dependencies, no counters): the floor that roster's
 * extra work (task_events, task_counts, lease indexes, fencing) is measured against.
 * Every figure is the median of `runs` runs with its min–max; the queue is topped up
 * after each run so the depth stays what the row says. Queues are seeded set-based
 * (bench/store-seed.ts); seeding is not measured.
 */
import Database from "better-sqlite3";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { openStore, type Store } from "../src/store/index.js";
import { describeEnvironment, environment, type Environment } from "./lib/machine.js";
import { repoRoot } from "./lib/paths.js";
import { writeResultsSection } from "./lib/results.js";
import { formatCount, formatNumber, formatSummary, markdownTable, summarize, textTable, type Summary } from "./lib/stats.js";
import { BASELINE_SCHEMA, seedBaselineJobs, seedRosterTasks } from "./store-seed.js";

export const STORE_BENCH_DEPTHS = [10_000, 100_000, 1_000_000];
export const STORE_BENCH_QUICK_DEPTHS = [1_000, 10_000];
export const BATCH_DEFAULT = 50;
const PERSONA = "bench";
const LEASE_MS = 60_000;

export type BenchMode = "single" | "batched";
export type BenchSystem = "roster" | "raw better-sqlite3";

export interface StoreBenchOptions {
  /** Small depths and counts: a smoke run of a few seconds. */
  quick?: boolean;
  /** Queue depths to measure at. */
  depths?: number[];
  /** Runs per figure (median reported); at least 3. */
  runs?: number;
  /** Tasks claimed and completed per single-mode run (capped at depth / 4). */
  singleTasks?: number;
  /** Tasks claimed and completed per batched-mode run (capped at depth / 4). */
  batchedTasks?: number;
  /** Tasks per claim statement and per settle in batched mode. */
  batchSize?: number;
  /** Markdown file whose "## store" section is written; null writes nothing. */
  resultsPath?: string | null;
  /** The command line shown in RESULTS.md. */
  command?: string;
  /** Progress lines; default stderr. */
  log?: (line: string) => void;
}

export interface StoreBenchRow {
  depth: number;
  mode: BenchMode;
  system: BenchSystem;
  tasksPerRun: number;
  /** Claim + complete, tasks per second. */
  tasksPerSecond: Summary;
  /** Claim statements alone, tasks per second. */
  claimsPerSecond: Summary;
}

export interface StoreBenchResult {
  environment: Environment;
  command: string;
  batchSize: number;
  rows: StoreBenchRow[];
  /** roster claim rate at the deepest queue over the shallowest, per mode (target ≥ 0.8). */
  depthRatio: Record<BenchMode, number>;
  markdown: string;
}

/** One measured run: elapsed ms for everything, and for the claims alone. */
interface Timing {
  totalMs: number;
  claimMs: number;
}

interface System {
  name: BenchSystem;
  run(mode: BenchMode, tasks: number, batchSize: number): Promise<Timing>;
  refill(count: number): void;
  close(): Promise<void>;
}

async function rosterSystem(dir: string, depth: number): Promise<System> {
  const path = join(dir, "roster.db");
  const now = Date.now();
  const store: Store = await openStore({ path, now });
  await store.personas.sync({
    personas: [{ id: PERSONA, name: "Bench", definition: "Benchmark persona.", config: { leaseMs: LEASE_MS }, sourcePath: null }],
    now,
  });
  seedRosterTasks(path, { persona: PERSONA, count: depth, now });
  return {
    name: "roster",
    async run(mode, tasks, batchSize) {
      let claimMs = 0;
      const started = performance.now();
      let done = 0;
      while (done < tasks) {
        const limit = mode === "single" ? 1 : Math.min(batchSize, tasks - done);
        const before = performance.now();
        const claimed = await store.tasks.claim({ persona: PERSONA, agentId: "bench", limit, now: Date.now() });
        claimMs += performance.now() - before;
        if (claimed.length !== limit) throw new Error(`roster: claimed ${claimed.length} of ${limit}; the queue ran dry`);
        if (mode === "single") {
          const t = claimed[0]!;
          const result = await store.tasks.completeIfLeased({ taskId: t.id, leaseToken: t.leaseToken, result: { ok: true }, now: Date.now() });
          if (!result.ok) throw new Error(`roster: lost the lease of task ${t.id}`);
        } else {
          const results = await store.tasks.settle({
            settlements: claimed.map((t) => ({ kind: "complete" as const, taskId: t.id, leaseToken: t.leaseToken, result: { ok: true } })),
            now: Date.now(),
          });
          if (results.some((r) => !r.ok)) throw new Error("roster: lost a lease in a batch");
        }
        done += claimed.length;
      }
      return { totalMs: performance.now() - started, claimMs };
    },
    refill(count) {
      seedRosterTasks(path, { persona: PERSONA, count, now: Date.now() });
    },
    close: () => store.close(),
  };
}

function rawSystem(dir: string, depth: number): System {
  const db = new Database(join(dir, "raw.db"));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
  db.exec(BASELINE_SCHEMA);
  seedBaselineJobs(db, { persona: PERSONA, count: depth, now: Date.now() });
  const claimStmt = db.prepare(`
    UPDATE jobs SET status = 'claimed', attempts = attempts + 1, lease_token = @token || '.' || id, lease_expires_at = @now + @leaseMs
    WHERE id IN (SELECT id FROM jobs WHERE status = 'pending' AND persona = @persona AND run_at <= @now
                 ORDER BY priority DESC, run_at, id LIMIT @limit)
    RETURNING id, lease_token`);
  const completeStmt = db.prepare(`
    UPDATE jobs SET status = 'completed', result = @result, lease_token = NULL, lease_expires_at = NULL
    WHERE id = @id AND lease_token = @token AND status = 'claimed' AND lease_expires_at > @now`);
  const claim = db.transaction((limit: number) =>
    claimStmt.all({ token: randomBytes(12).toString("base64url"), now: Date.now(), leaseMs: LEASE_MS, persona: PERSONA, limit }) as Array<{
      id: number;
      lease_token: string;
    }>,
  );
  const complete = db.transaction((jobs: Array<{ id: number; lease_token: string }>) => {
    const now = Date.now();
    for (const job of jobs) {
      if (completeStmt.run({ id: job.id, token: job.lease_token, now, result: JSON.stringify({ ok: true }) }).changes !== 1) {
        throw new Error(`raw: lost the lease of job ${job.id}`);
      }
    }
  });
  return {
    name: "raw better-sqlite3",
    async run(mode, tasks, batchSize) {
      let claimMs = 0;
      const started = performance.now();
      let done = 0;
      while (done < tasks) {
        const limit = mode === "single" ? 1 : Math.min(batchSize, tasks - done);
        const before = performance.now();
        const claimed = claim.immediate(limit);
        claimMs += performance.now() - before;
        if (claimed.length !== limit) throw new Error(`raw: claimed ${claimed.length} of ${limit}; the queue ran dry`);
        complete.immediate(claimed);
        done += claimed.length;
      }
      return { totalMs: performance.now() - started, claimMs };
    },
    refill(count) {
      seedBaselineJobs(db, { persona: PERSONA, count, now: Date.now() });
    },
    close: async () => {
      db.close();
    },
  };
}

function resolveOptions(options: StoreBenchOptions) {
  const quick = options.quick === true;
  const runs = options.runs ?? 3;
  if (!Number.isInteger(runs) || runs < 3) throw new Error("options.runs must be an integer >= 3");
  const depths = options.depths ?? (quick ? STORE_BENCH_QUICK_DEPTHS : STORE_BENCH_DEPTHS);
  if (depths.length === 0 || depths.some((d) => !Number.isInteger(d) || d < 100)) throw new Error("options.depths must be integers >= 100");
  const batchSize = options.batchSize ?? BATCH_DEFAULT;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1_000) throw new Error("options.batchSize must be an integer from 1 to 1000");
  return {
    quick,
    runs,
    depths,
    batchSize,
    singleTasks: options.singleTasks ?? (quick ? 100 : 2_000),
    batchedTasks: options.batchedTasks ?? (quick ? 500 : 10_000),
    resultsPath: options.resultsPath === undefined ? (quick ? null : join(repoRoot(), "bench", "RESULTS.md")) : options.resultsPath,
    command: options.command ?? `node dist/bench/store.js${quick ? " --quick" : ""}`,
    log: options.log ?? ((line: string) => process.stderr.write(`${line}\n`)),
  };
}

export async function runStoreBench(options: StoreBenchOptions = {}): Promise<StoreBenchResult> {
  const o = resolveOptions(options);
  const env = environment(["better-sqlite3", "p-retry"]);
  const rows: StoreBenchRow[] = [];
  for (const depth of o.depths) {
    const dir = mkdtempSync(join(tmpdir(), "roster-bench-store-"));
    try {
      const seeded = performance.now();
      const systems = [await rosterSystem(dir, depth), rawSystem(dir, depth)];
      o.log(`store bench: ${formatCount(depth)} queued tasks seeded in ${Math.round(performance.now() - seeded)} ms`);
      const timings = new Map<string, Timing[]>();
      const perRun = (mode: BenchMode) => Math.max(1, Math.min(mode === "single" ? o.singleTasks : o.batchedTasks, Math.floor(depth / 4)));
      for (let run = 0; run < o.runs; run++) {
        for (const mode of ["single", "batched"] as const) {
          // Alternate which system goes first, so neither always meets a fresh checkpoint.
          const order = run % 2 === 0 ? systems : [...systems].reverse();
          for (const system of order) {
            const tasks = perRun(mode);
            const timing = await system.run(mode, tasks, o.batchSize);
            system.refill(tasks);
            const key = `${mode}|${system.name}`;
            timings.set(key, [...(timings.get(key) ?? []), timing]);
          }
        }
      }
      for (const system of systems) await system.close();
      for (const mode of ["single", "batched"] as const) {
        for (const system of systems) {
          const list = timings.get(`${mode}|${system.name}`)!;
          const tasks = perRun(mode);
          const row: StoreBenchRow = {
            depth,
            mode,
            system: system.name,
            tasksPerRun: tasks,
            tasksPerSecond: summarize(list.map((t) => (tasks * 1000) / t.totalMs)),
            claimsPerSecond: summarize(list.map((t) => (tasks * 1000) / t.claimMs)),
          };
          rows.push(row);
          o.log(`  ${mode.padEnd(7)} ${system.name.padEnd(18)} ${formatSummary(row.tasksPerSecond)} tasks/s`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const rate = (depth: number, mode: BenchMode) => rows.find((r) => r.depth === depth && r.mode === mode && r.system === "roster")!.claimsPerSecond.median;
  const shallow = o.depths[0]!;
  const deep = o.depths[o.depths.length - 1]!;
  const depthRatio = { single: rate(deep, "single") / rate(shallow, "single"), batched: rate(deep, "batched") / rate(shallow, "batched") };
  const result: StoreBenchResult = { environment: env, command: o.command, batchSize: o.batchSize, rows, depthRatio, markdown: "" };
  result.markdown = renderMarkdown(result, o.runs, shallow, deep);
  if (o.resultsPath !== null) writeResultsSection(o.resultsPath, "store", result.markdown);
  return result;
}

function tableRows(result: StoreBenchResult): string[][] {
  const header = ["queued", "mode", "system", "tasks/s claim+complete (min–max)", "µs/task", "claims/s alone (min–max)", "roster ÷ raw"];
  const body = result.rows.map((row) => {
    const raw = result.rows.find((r) => r.depth === row.depth && r.mode === row.mode && r.system === "raw better-sqlite3")!;
    return [
      formatCount(row.depth),
      row.mode === "batched" ? `batched (${result.batchSize})` : "single",
      row.system,
      formatSummary(row.tasksPerSecond),
      formatNumber(1e6 / row.tasksPerSecond.median),
      formatSummary(row.claimsPerSecond),
      row.system === "roster" ? `${(row.tasksPerSecond.median / raw.tasksPerSecond.median).toFixed(2)}×` : "",
    ];
  });
  return [header, ...body];
}

const ALIGN: Array<"l" | "r"> = ["r", "l", "l", "r", "r", "r", "r"];

function renderMarkdown(result: StoreBenchResult, runs: number, shallow: number, deep: number): string {
  const ratio = (mode: BenchMode) => `${result.depthRatio[mode].toFixed(2)}${result.depthRatio[mode] >= 0.8 ? "" : " (below the 0.8 target)"}`;
  return [
    `Command: \`${result.command}\` (after \`npx tsc -p tsconfig.json\`), ${new Date().toISOString().slice(0, 16)}Z.`,
    "",
    ...describeEnvironment(result.environment),
    `- Each figure: median of ${runs} runs (min–max). One file per system, WAL, synchronous=NORMAL, one connection, no other load from this run.`,
    "",
    markdownTable(tableRows(result), ALIGN),
    "",
    `Claim rate at ${formatCount(deep)} queued over ${formatCount(shallow)}: single ${ratio("single")}, batched ${ratio("batched")} (target ≥ 0.8: the claim is one index seek at any depth).`,
    "",
    "single = claim one task per statement and complete it, each in its own BEGIN IMMEDIATE transaction;",
    `batched = claim up to ${result.batchSize} per statement, complete them in one transaction (settle). roster writes`,
    "what the supervisor needs on top of the baseline: task_events rows, task_counts, the index of leased rows",
    "and fenced updates. The raw baseline is one table with one partial claim index, same statements' shape.",
  ].join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { quick: { type: "boolean", default: false }, out: { type: "string" }, help: { type: "boolean", default: false } },
  });
  if (values.help) {
    process.stdout.write("usage: node dist/bench/store.js [--quick] [--out FILE]\n");
    return;
  }
  const quick = values.quick === true;
  const result = await runStoreBench({
    quick,
    ...(values.out !== undefined ? { resultsPath: resolve(values.out) } : {}),
  });
  process.stdout.write(`${textTable(tableRows(result), ALIGN)}\n\n`);
  process.stdout.write(`claim rate ${formatCount(result.rows.at(-1)!.depth)} ÷ ${formatCount(result.rows[0]!.depth)}: single ${result.depthRatio.single.toFixed(2)}, batched ${result.depthRatio.batched.toFixed(2)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`store bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
