import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type ClaimParams, type Store } from "../../src/store/index.js";
import { autoExplained, explainPlan, planNodes as nodes, usePostgres, type PlanNode } from "../helpers/postgres.js";
import { T0 } from "../helpers/store.js";
import { syncTestPersonas } from "../helpers/personas.js";

/**
 * The PostgreSQL claim at a deep queue (docs/ARCHITECTURE.md rule 2; 6dd93c8). The claim's
 * LIMIT was once a function call (the persona's room); the planner cannot tell a
 * function's value, took a tenth of the queue for the LIMIT and, at 1M queued, leased the
 * rows through a sequential scan and hash join of task_status: 1.3 s a claim. Here the
 * queue is most of the table (50,000 ready tasks of one persona, analyzed), which is what
 * makes such a plan win. The claims the store really sends are captured on their way to
 * the server with their values and planned as they run: a supervisor's (one call of
 * roster_claim, migrations/postgres/0011: every statement it runs, reported by
 * auto_explain, with plpgsql's cached plans and with generic plans forced) and the
 * transactional one (a named prepared statement: through PostgreSQL's plan cache, which
 * may switch to a generic plan after five runs, past its fifth). Each must seek
 * task_status_claim under its Limit and read no task table whole. A last case shows the
 * queue is deep enough to tell: the old LIMIT plans the sequential scan here.
 */
const server = await usePostgres();

const QUEUED = 50_000;
// The tables a deep queue makes big (human_requests and task_dependencies are empty here: a scan of them costs nothing).
const TASK_TABLES = new Set(["tasks", "task_status", "task_events"]);

const describePlan = (plan: PlanNode[]): string => plan.map((n) => `${n["Node Type"]}${n["Index Name"] ? ` ${n["Index Name"]}` : ""}${n["Relation Name"] ? ` on ${n["Relation Name"]}` : ""}`).join(" | ");

/** A statement as the store sent it: its text, its values, and its name when prepared. */
interface Sent {
  text: string;
  values: unknown[];
  name?: string;
}

/** Runs `claim` on the store and returns every statement it sent, and how many tasks it claimed. */
async function capturedClaim(store: Store, params: ClaimParams): Promise<{ sent: Sent[]; claimed: number }> {
  const sent: Sent[] = [];
  const original = pg.Client.prototype.query;
  // Every pooled connection is a pg.Client: record what goes through, change nothing.
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const [first, second] = args as [string | { text: string; values?: unknown[]; name?: string }, unknown[] | undefined];
    if (typeof first === "string") sent.push({ text: first, values: second ?? [] });
    else if (typeof first === "object" && first !== null && typeof first.text === "string") sent.push({ text: first.text, values: first.values ?? [], ...(first.name !== undefined ? { name: first.name } : {}) });
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  try {
    return { sent, claimed: (await store.tasks.claim(params)).length };
  } finally {
    pg.Client.prototype.query = original;
  }
}

/** The one statement among `sent` that `test` picks. */
function one(sent: Sent[], test: (text: string) => boolean, what: string): Sent {
  const found = sent.filter((s) => test(s.text));
  expect(found, `${what} among: ${sent.map((s) => s.text.trim().slice(0, 60)).join(" / ")}`).toHaveLength(1);
  return found[0]!;
}
const isClaimStatement = (text: string) => text.includes("FOR UPDATE SKIP LOCKED") && text.includes("task:claimed");

/** No task table read whole: no Seq Scan of one, and no hash or merge join over one (it reads all of its inputs: the 1.3 s plan joined the claimed rows so). */
function expectNoBulkRead(plan: PlanNode[]): void {
  const text = describePlan(plan);
  expect(plan.filter((n) => n["Node Type"] === "Seq Scan" && TASK_TABLES.has(n["Relation Name"] ?? "")), text).toEqual([]);
  const bulkJoins = plan.filter((n) => (n["Node Type"] === "Hash Join" || n["Node Type"] === "Merge Join") && nodes(n).some((m) => TASK_TABLES.has(m["Relation Name"] ?? "")));
  expect(bulkJoins.map((n) => describePlan(nodes(n))), text).toEqual([]);
}

/** The checks on a claim's plan: a seek into the partial claim index under the Limit, locking, no sort, no task table read whole. */
function expectSeek(plan: PlanNode[]): void {
  const text = describePlan(plan);
  const types = plan.map((n) => n["Node Type"]);
  expect(types, text).toContain("Limit");
  expect(types, text).toContain("LockRows");
  expect(types, text).not.toContain("Sort");
  expectNoBulkRead(plan);
  const picks = plan.filter((n) => n["Relation Name"] === "task_status" && n["Node Type"] !== "ModifyTable");
  expect(picks.map((n) => n["Index Name"]), text).toContain("task_status_claim");
}

describe.skipIf(!server.available)(`postgres: the claim's plan at a deep queue (${QUEUED.toLocaleString("en")} ready tasks of one persona)`, () => {
  let store: Store;
  let client: pg.Client;
  const now = T0 + 10 * QUEUED;

  beforeAll(async () => {
    const url = await server.server().newDatabase("roster_deep_claim");
    store = await openStore({ path: url, now: T0 });
    await syncTestPersonas(store, T0);
    client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`
      INSERT INTO tasks (id, title, persona_id, retry_policy, timeout_ms, created_at)
      SELECT g, 'task ' || g, 'worker', '{}', 60000, ${T0} FROM generate_series(1, ${QUEUED}) g`);
    await client.query(`
      INSERT INTO task_status (task_id, status, persona_id, priority, run_at, ready_at, max_attempts, updated_at)
      SELECT g, 'pending', 'worker', g % 3, ${T0} + g, ${T0}, 3, ${T0} FROM generate_series(1, ${QUEUED}) g`);
    await client.query("SELECT setval(pg_get_serial_sequence('tasks', 'id'), $1)", [QUEUED]);
    await client.query("ANALYZE");
  }, 120_000);

  afterAll(async () => {
    await client?.end();
    await store?.close();
  });

  const explain = (sql: string, values: unknown[]): Promise<PlanNode[]> => explainPlan(client, sql, values);

  it("a supervisor's claim (its lease given, no gate active), the one call of roster_claim the store sends, plans every statement it runs without scanning a task table, generic plans included", async () => {
    const { sent, claimed } = await capturedClaim(store, { persona: "worker", agentId: "agent-deep", limit: 16, leaseMs: 30_000, now });
    expect(claimed).toBe(16);
    const call = one(sent, (text) => text.includes("roster_claim("), "the one-round-trip claim");
    for (const mode of ["auto", "force_generic_plan"]) {
      // auto_explain reports the plan of every statement the function runs.
      const plans = await autoExplained(client, { planCacheMode: mode }, async () => {
        // The call as the store sent it, its values those of a claim now (a fresh token).
        const { rows } = await client.query(call.text, [...call.values.slice(0, 2), "tok-deep", ...call.values.slice(3)]);
        expect(rows).toHaveLength(16);
      });
      const text = plans.map(describePlan).join("\n");
      const pick = plans.filter((plan) => plan.some((n) => n["Node Type"] === "LockRows"));
      expect(pick, text).toHaveLength(1);
      expectSeek(pick[0]!);
      for (const plan of plans) expectNoBulkRead(plan);
    }
  });

  it("the prepared claim (an MCP agent's: the persona's lease) keeps that plan through PostgreSQL's plan cache, past its fifth run", async () => {
    const captured = await capturedClaim(store, { persona: "worker", agentId: "agent-deep-mcp", limit: 1, now });
    expect(captured.claimed).toBe(1);
    const sent = one(captured.sent, isClaimStatement, "the transactional claim statement");
    expect(sent.name, "the gated claim is a named, prepared statement").toBeDefined();
    await client.query(`PREPARE deep_claim AS ${sent.text}`);
    try {
      const args = sent.values.map((v) => client.escapeLiteral(String(v))).join(", ");
      for (let run = 1; run <= 7; run++) {
        const { rows } = await client.query<{ "QUERY PLAN": Array<{ Plan: PlanNode }> }>(`EXPLAIN (FORMAT JSON) EXECUTE deep_claim(${args})`);
        const plan = nodes(rows[0]!["QUERY PLAN"][0]!.Plan);
        expectSeek(plan);
      }
    } finally {
      await client.query("DEALLOCATE deep_claim");
    }
  });

  it("the queue is deep enough to tell: the claim as it was before 6dd93c8 (the room a function call in its LIMIT) scans task_status here", async () => {
    const sent = one((await capturedClaim(store, { persona: "worker", agentId: "agent-deep-old", limit: 1, now })).sent, isClaimStatement, "the transactional claim statement");
    const old = sent.text.replace("LIMIT $6", "LIMIT least($6, roster_persona_room($5))");
    expect(old, "the claim's LIMIT is still $6").not.toBe(sent.text);
    const plan = await explain(old, sent.values);
    expect(plan.filter((n) => n["Node Type"] === "Seq Scan" && n["Relation Name"] === "task_status").length, describePlan(plan)).toBeGreaterThan(0);
  });
});
