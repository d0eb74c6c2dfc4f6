import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { expect, vi } from "vitest";
import { runCli } from "../../src/cli/program.js";
import { openStore, type Store } from "../../src/store/index.js";

/**
 * A SQLite database with a history worth copying (`roster db copy` tests): a goal
 * decomposed into a DAG, a retry, failures (one not retryable, one out of attempts),
 * a cancellation, usage on completions and failures with a user's model price,
 * approvals (approved, rejected, still open), a question answered, a schedule that
 * fired, progress, a task with a concurrency key, and agents (one deregistered, one that crashed an hour ago).
 * Built through the real store in the past (an hour ago), so nothing looks alive.
 * What is left pending is what `roster start` must finish after the copy.
 */

/**
 * A command's --json output, run in this process through the CLI's own entry
 * (runCli: the same commander program and printing as bin.js), because the
 * comparisons run some eighty reads and a process each would cost minutes.
 */
export async function cliJson<T>(args: string[]): Promise<T> {
  let out = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  let code: number;
  try {
    code = await runCli(["node", "roster", ...args, "--json"]);
  } finally {
    spy.mockRestore();
  }
  expect(code, `roster ${args.join(" ")}`).toBe(0);
  return JSON.parse(out) as T;
}

/** Every table of the database's public schema with its row count, and the migrations it records: what "untouched" compares. */
export async function pgState(url: string): Promise<Record<string, number | string[]>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const tables = (await client.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).rows.map((r) => r.t);
    const out: Record<string, number | string[]> = {};
    for (const t of tables) out[t] = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM "${t}"`)).rows[0]!.n);
    if (tables.includes("schema_migrations")) out.migrations = (await client.query<{ c: string }>("SELECT name || ':' || checksum AS c FROM schema_migrations ORDER BY version")).rows.map((r) => r.c);
    return out;
  } finally {
    await client.end();
  }
}

export const WORKER = "worker";
export const GATE = "gate";

function persona(id: string, adapter: string): string {
  return `---\nid: ${id}\nname: ${id}\nadapter:\n${adapter}\nconcurrency: 4\nleaseMs: 30000\ntimeoutMs: 60000\nretry:\n  maxAttempts: 3\n  backoff: fixed\n  baseMs: 10\n  maxMs: 10\n  jitter: 0\n---\n${id} does its part.\n`;
}

export function writePersonas(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${WORKER}.md`), persona(WORKER, "  kind: echo"));
  writeFileSync(join(dir, `${GATE}.md`), persona(GATE, "  kind: human"));
}

export interface History {
  ids: Record<string, number>;
  /** Every task's state once `roster start --exit-when-idle` has run on the copy: [status, attempts]. */
  expectedAfterStart: Record<string, [string, number]>;
}

/** `roster init` with the two personas, then the history through the store. */
export async function buildHistory(db: string, personasDir: string): Promise<History> {
  writePersonas(personasDir);
  await cliJson(["init", "--db", db, "--personas", personasDir]);
  const store = await openStore({ path: db });
  try {
    return await play(store, Date.now() - 3_600_000);
  } finally {
    await store.close();
  }
}

async function play(store: Store, base: number): Promise<History> {
  let clock = base;
  const now = () => (clock += 1_000);
  const ids: Record<string, number> = {};
  const agent = (await store.agents.register({ id: "supervisor-old", name: "old supervisor", kind: "supervisor", pid: 4242, hostname: "old-host", heartbeatTimeoutMs: 30_000, now: now() })).id;
  await store.agents.register({ id: "supervisor-crashed", name: "crashed supervisor", kind: "supervisor", pid: 4343, hostname: "old-host", heartbeatTimeoutMs: 30_000, now: now() });
  await store.economics.setPrice({ model: "house-model", price: { inputPerMTok: 3, outputPerMTok: 15, cacheReadPerMTok: 0.3, cacheWritePerMTok: 3.75 }, now: now() });

  const claim = async (taskId: number) => {
    const claimed = await store.tasks.claimById({ taskId, agentId: agent, now: now() });
    if (claimed === null) throw new Error(`task ${taskId} could not be claimed`);
    return { taskId, leaseToken: claimed.leaseToken };
  };
  const fail = async (taskId: number, message: string, retryable = true) => {
    const r = await store.tasks.failIfLeased({ ...(await claim(taskId)), error: { message, code: "ADAPTER_FAILED", retryable }, usage: { model: "house-model", inputTokens: 100, outputTokens: 10 }, now: now(), random: () => 0.5 });
    if (!r.ok) throw new Error(`fail ${taskId}: lease lost`);
  };
  const complete = async (taskId: number, result: unknown, children?: Parameters<Store["tasks"]["completeIfLeased"]>[0]["children"]) => {
    const lease = await claim(taskId);
    await store.tasks.progressIfLeased({ ...lease, fraction: 0.5, message: "halfway", now: now() });
    const r = await store.tasks.completeIfLeased({ ...lease, result: result as never, children, usage: { model: "house-model", inputTokens: 1_000, outputTokens: 500, costUsd: 0.0125 }, now: now() });
    if (!r.ok) throw new Error(`complete ${taskId}: lease lost`);
    return r.childRefs;
  };
  const enqueue = async (name: string, input: Omit<Parameters<Store["tasks"]["enqueue"]>[0]["tasks"][number], "title">) => {
    ids[name] = (await store.tasks.enqueue({ tasks: [{ title: `${name}: ${input.persona} task`, ...input }], createdBy: "cli", now: now() })).ids[0]!;
    return ids[name]!;
  };

  // A goal decomposed by its planner's completion into a DAG: a → (b, c) → d.
  await enqueue("goal", { persona: WORKER, description: "Release 2.0", payload: { goal: true } });
  const refs = await complete(ids.goal!, { plan: "four steps" }, [
    { ref: "a", persona: WORKER, title: "design", payload: { step: 1 } },
    { ref: "b", persona: WORKER, title: "build", dependsOn: ["a"] },
    { ref: "c", persona: WORKER, title: "risky migration", dependsOn: ["a"], maxAttempts: 1 },
    { ref: "d", persona: WORKER, title: "ship", dependsOn: ["b", "c"], priority: 5 },
  ]);
  Object.assign(ids, refs);
  await complete(ids.a!, { summary: "designed" });
  await fail(ids.b!, "network hiccup"); // retrying, back to pending after 10 ms
  await complete(ids.b!, { summary: "built on the second attempt" });
  await fail(ids.c!, "schema conflict", false); // failed; d is blocked
  await enqueue("cancelled", { persona: WORKER });
  await store.tasks.cancel({ taskId: ids.cancelled!, reason: "no longer needed", by: "cli", now: now() });
  await enqueue("exhausted", { persona: WORKER, maxAttempts: 2 });
  await fail(ids.exhausted!, "first failure");
  await fail(ids.exhausted!, "second failure");

  // People: an approval given, one refused, one still open (with a task waiting on it); a question answered.
  await enqueue("approved", { persona: GATE });
  await store.humans.approve({ taskId: ids.approved!, note: "go ahead", by: "alice", now: now() });
  await enqueue("rejected", { persona: GATE });
  await store.humans.reject({ taskId: ids.rejected!, reason: "too expensive", by: "bob", now: now() });
  await enqueue("open-approval", { persona: GATE, payload: { approval: { note: "waits for a person" } } });
  await enqueue("after-approval", { persona: WORKER, dependsOn: [ids["open-approval"]!] });
  await enqueue("asked", { persona: WORKER });
  const asked = await claim(ids.asked!);
  await store.humans.askIfLeased({ ...asked, question: "which branch?", now: now() });
  await store.humans.answer({ taskId: ids.asked!, answer: "main", by: "alice", now: now() });

  // Work left for the supervisor on the copy: pending, waiting on it, and a retry due.
  await enqueue("pending", { persona: WORKER, payload: { text: "ünïcode ✓ and \"quotes\"" }, idempotencyKey: "pending-once" });
  await enqueue("waits-on-pending", { persona: WORKER, dependsOn: [ids.pending!] });
  await enqueue("keyed", { persona: WORKER, policy: { concurrencyKey: "repo-a", concurrencyLimit: 1 } });
  await enqueue("retrying", { persona: WORKER });
  await fail(ids.retrying!, "try again later");

  // A schedule that fired once (its task pending) and fires next in a year.
  const year = 365 * 86_400_000;
  const [schedule] = await store.schedules.upsert({ schedules: [{ id: "nightly", cron: "0 3 * * *", timezone: "UTC", task: { persona: WORKER, title: "nightly report" }, nextFireAt: base + 60_000, source: "cli" }], now: now() });
  const fired = await store.schedules.fire({ scheduleId: "nightly", expectedNextFireAt: schedule!.nextFireAt!, fireAts: [schedule!.nextFireAt!], skipped: [], nextFireAt: base + year, by: "test", now: now() });
  ids.scheduled = fired.taskIds[0]!;

  await store.agents.deregister({ agentId: agent, now: now() });
  return {
    ids,
    expectedAfterStart: {
      goal: ["completed", 1],
      a: ["completed", 1],
      b: ["completed", 2],
      c: ["failed", 1],
      d: ["blocked", 0],
      cancelled: ["cancelled", 0],
      exhausted: ["failed", 2],
      approved: ["completed", 0],
      rejected: ["failed", 0],
      "open-approval": ["awaiting_approval", 0],
      "after-approval": ["waiting", 0],
      asked: ["completed", 1],
      pending: ["completed", 1],
      "waits-on-pending": ["completed", 1],
      keyed: ["completed", 1],
      retrying: ["completed", 2],
      scheduled: ["completed", 1],
    },
  };
}
