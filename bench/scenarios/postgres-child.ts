/**
 * The store-level measure of the `postgres` scenario, run in a child process of its
 * own: the PostgreSQL store's claim rate with a deep queue, claims in the batches the
 * supervisor asks for (src/supervisor/producer.ts: up to the persona's concurrency),
 * and the claim statement's plan and time (EXPLAIN ANALYZE) at that depth.
 */
import { join } from "node:path";
import pg from "pg";
import { PG_CLAIM_SQL } from "../../src/store/postgres/claims.js";
import { openStore, type TaskInput } from "../../src/store/index.js";
import { writePersona } from "./support/personas.js";

const ENQUEUE_CHUNK = 10_000;

export interface ClaimLoop {
  /** Ready tasks queued when the loop began. */
  depthAtStart: number;
  claimed: number;
  calls: number;
  claimMs: number;
  claimsPerSec: number;
  /** Wall time of one store claim call (a transaction), ms: median and p99 over the loop. */
  callMsP50: number;
  callMsP99: number;
}

export interface ClaimRateRun {
  depth: number;
  batch: number;
  enqueueMs: number;
  loops: ClaimLoop[];
  /** EXPLAIN (ANALYZE, BUFFERS) of the claim statement at this depth, rolled back. */
  explain: { executionMs: number; planningMs: number; leaseUpdateMs: number; eventsInsertMs: number; plan: string[] };
}

/**
 * Enqueues `depth` ready tasks through the store (10,000 per transaction), then, `loops`
 * times, claims `take` of them through `store.tasks.claim` in batches of `batch`, one
 * call after another on one store, as a producer does, and times each claim call (each
 * batch is completed between calls, outside the timing).
 */
export async function claimRateRun(args: { url: string; dir: string; depth: number; take: number; batch: number; loops: number }): Promise<ClaimRateRun> {
  const personasDir = join(args.dir, "personas");
  writePersona(personasDir, { id: "noop", adapter: { kind: "echo" }, concurrency: args.batch });
  const store = await openStore({ path: args.url });
  try {
    const { loadPersonaDir, toPersonaUpsert } = await import("../../src/personas/load.js");
    await store.personas.sync({ personas: loadPersonaDir(personasDir).map(toPersonaUpsert), now: Date.now() });
    const t0 = performance.now();
    for (let i = 0; i < args.depth; i += ENQUEUE_CHUNK) {
      const tasks: TaskInput[] = [];
      for (let j = i; j < Math.min(args.depth, i + ENQUEUE_CHUNK); j++) tasks.push({ persona: "noop", title: `claim ${j}`, payload: { i: j } });
      await store.tasks.enqueue({ tasks, now: Date.now() });
    }
    const enqueueMs = performance.now() - t0;
    const explain = await explainClaim(args.url, args.batch);
    const loops: ClaimLoop[] = [];
    let left = args.depth;
    for (let loop = 0; loop < args.loops; loop++) {
      const calls: number[] = [];
      let claimed = 0;
      while (claimed < args.take) {
        const c0 = performance.now();
        const got = await store.tasks.claim({ persona: "noop", agentId: "bench-claimer", limit: Math.min(args.batch, args.take - claimed), leaseMs: 60_000, now: Date.now() });
        calls.push(performance.now() - c0);
        if (got.length === 0) throw new Error(`the claim came back empty after ${claimed} of ${args.take} tasks at depth ${left}`);
        claimed += got.length;
        // Completed, untimed, as a supervisor's attempts would be: the store holds the persona's
        // concurrency (docs/ARCHITECTURE.md rule 15), so leases never settled would fill it.
        await store.tasks.settle({ settlements: got.map((t) => ({ kind: "complete" as const, taskId: t.id, leaseToken: t.leaseToken, result: null })), now: Date.now() });
      }
      // The claims' own time: the completions between them are not counted.
      const claimMs = calls.reduce((sum, ms) => sum + ms, 0);
      calls.sort((a, b) => a - b);
      const at = (q: number) => calls[Math.min(calls.length - 1, Math.max(0, Math.ceil(q * calls.length) - 1))]!;
      loops.push({ depthAtStart: left, claimed, calls: calls.length, claimMs, claimsPerSec: (claimed / claimMs) * 1000, callMsP50: at(0.5), callMsP99: at(0.99) });
      left -= claimed;
    }
    return { depth: args.depth, batch: args.batch, enqueueMs, loops, explain };
  } finally {
    await store.close();
  }
}

/** EXPLAIN (ANALYZE, BUFFERS) of the store's claim statement for `batch` tasks, in a transaction rolled back. */
async function explainClaim(url: string, batch: number): Promise<ClaimRateRun["explain"]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("BEGIN");
    const { rows } = await client.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, BUFFERS) ${PG_CLAIM_SQL}`, [Date.now(), "bench-explain", "t", 60_000, "noop", batch]);
    await client.query("ROLLBACK");
    const plan = rows.map((r) => r["QUERY PLAN"]);
    const ms = (label: string) => Number(/([\d.]+) ms/.exec(plan.find((l) => l.startsWith(label)) ?? "")?.[1] ?? Number.NaN);
    // A node's own total: the second figure of "actual time=first..total".
    const node = (label: string) => Number(/actual time=[\d.]+\.\.([\d.]+)/.exec(plan.find((l) => l.includes(label)) ?? "")?.[1] ?? Number.NaN);
    return { executionMs: ms("Execution Time"), planningMs: ms("Planning Time"), leaseUpdateMs: node("Update on task_status"), eventsInsertMs: node("Insert on task_events"), plan };
  } finally {
    await client.end();
  }
}
