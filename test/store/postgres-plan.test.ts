import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/index.js";
import { PG_OBSERVE_LEASES_SQL, PG_OLDEST_READY_SQL } from "../../src/store/postgres/reads.js";
import { ungatedClaimSql } from "../../src/store/postgres/gates.js";
import { PG_CLAIM_SQL } from "../../src/store/postgres/claims.js";
import { PG_COMPLETE_DEPENDENCIES_SQL } from "../../src/store/postgres/graph.js";
import { autoExplained, explainPlan, usePostgres, type PlanNode } from "../helpers/postgres.js";
import { T0 } from "../helpers/store.js";
import { syncTestPersonas } from "../helpers/personas.js";

/**
 * docs/ARCHITECTURE.md rule 2 on PostgreSQL (issue 19): the statements the
 * supervisor runs on every tick, explained against 200,000 tasks (most finished, a
 * deep ready queue): each is an index scan of the partial index meant for it, the
 * claim a seek under a Limit with no Sort and no scan of the table.
 */
const server = await usePostgres();

describe.skipIf(!server.available)("postgres: query plans of the hot statements", () => {
  let store: Store;
  let client: pg.Client;

  beforeAll(async () => {
    store = await openStore({ path: server.url(), now: T0 });
    await syncTestPersonas(store, T0);
    client = new pg.Client({ connectionString: server.url() });
    await client.connect();
    // 200k tasks: 90% completed, the rest pending (ready or delayed) or leased, over two personas.
    await client.query(`
      INSERT INTO tasks (id, title, persona_id, retry_policy, timeout_ms, created_at)
      SELECT g, 'task ' || g, CASE WHEN g % 2 = 0 THEN 'worker' ELSE 'reviewer' END, '{}', 60000, ${T0}
      FROM generate_series(1, 200000) g`);
    await client.query(`
      INSERT INTO task_status (task_id, status, persona_id, priority, run_at, ready_at, max_attempts, assigned_agent_id, lease_token, lease_ms, lease_expires_at, updated_at)
      SELECT g,
             CASE WHEN g % 10 < 8 THEN 'completed' WHEN g % 10 = 8 THEN 'pending' WHEN g % 20 = 9 THEN 'claimed' ELSE 'waiting' END,
             CASE WHEN g % 2 = 0 THEN 'worker' ELSE 'reviewer' END,
             g % 3, ${T0} + (g % 1000) * 1000, ${T0}, 3,
             CASE WHEN g % 20 = 9 THEN 'agent-' || (g % 7) END, CASE WHEN g % 20 = 9 THEN 'tok.' || g END,
             CASE WHEN g % 20 = 9 THEN 30000 END, CASE WHEN g % 20 = 9 THEN ${T0} + 30000 END, ${T0}
      FROM generate_series(1, 200000) g`);
    await client.query(`
      INSERT INTO task_dependencies (task_id, depends_on)
      SELECT g, g - 1 FROM generate_series(2, 200000) g WHERE g % 10 = 9`);
    // Answered questions on one task in 20: the claim brings a task's answers along.
    await client.query(`
      INSERT INTO human_requests (task_id, kind, question, attempt, asked_at, outcome, answer, answered_at)
      SELECT g, 'input', 'question ' || g, 1, ${T0}, 'answered', 'answer', ${T0} FROM generate_series(1, 200000) g WHERE g % 20 = 3`);
    await client.query("SELECT setval(pg_get_serial_sequence('tasks', 'id'), 200000)");
    await client.query("ANALYZE");
  }, 120_000);

  afterAll(async () => {
    await client?.end();
    await store?.close();
  });

  const explain = (sql: string, params: unknown[]): Promise<PlanNode[]> => explainPlan(client, sql, params);

  const scansOfStatus = (plan: PlanNode[]) => plan.filter((n) => n["Relation Name"] === "task_status");

  it("the claim is one seek into task_status_claim under a Limit, locking with SKIP LOCKED, no sort, no table scan", async () => {
    const plan = await explain(PG_CLAIM_SQL, [T0 + 2_000_000, "agent-x", "tok", 30_000, "worker", 16]);
    const types = plan.map((n) => n["Node Type"]);
    expect(types).toContain("Limit");
    expect(types).toContain("LockRows");
    expect(types).not.toContain("Sort");
    expect(types).not.toContain("Seq Scan");
    const picks = scansOfStatus(plan).filter((n) => n["Node Type"] !== "ModifyTable");
    expect(picks.map((n) => n["Index Name"])).toContain("task_status_claim");
    for (const n of picks) expect(n["Node Type"]).toMatch(/^Index( Only)? Scan$/);
  });

  it("with no economic gate active the claim is still that one statement: the gates' probes run once before the seek, by index", async () => {
    const plan = await explain(ungatedClaimSql(PG_CLAIM_SQL), [T0 + 2_000_000, "agent-x", "tok", 30_000, "worker", 16]);
    const types = plan.map((n) => n["Node Type"]);
    expect(types).not.toContain("Sort");
    const reads = scansOfStatus(plan).filter((n) => n["Node Type"] !== "ModifyTable");
    for (const n of reads) expect(n["Node Type"]).toMatch(/^Index( Only)? Scan$/);
    // The claim's seek, and the probe for a running keyed task through its partial index (an InitPlan: once per statement).
    expect(reads.map((n) => n["Index Name"])).toEqual(expect.arrayContaining(["task_status_claim", "task_status_key_running"]));
    expect(plan.filter((n) => n["Parent Relationship"] === "InitPlan").length).toBeGreaterThanOrEqual(4);
  });

  it("the one-round-trip claim (roster_claim) keeps plans that hold at any depth: with generic plans forced, its pick is the seek under a Limit and its lease goes by primary key", async () => {
    // A persona with no concurrency (no room to count) and 60,000 ready tasks of its own.
    await client.query(`INSERT INTO personas (id, name, definition, config, created_at, updated_at) VALUES ('bulk', 'bulk', '', '{}', ${T0}, ${T0})`);
    await client.query(`INSERT INTO tasks (id, title, persona_id, retry_policy, timeout_ms, created_at)
      SELECT g, 'bulk ' || g, 'bulk', '{}', 60000, ${T0} FROM generate_series(200001, 260000) g`);
    await client.query(`INSERT INTO task_status (task_id, status, persona_id, priority, run_at, ready_at, max_attempts, updated_at)
      SELECT g, 'pending', 'bulk', 0, ${T0} + g, ${T0}, 3, ${T0} FROM generate_series(200001, 260000) g`);
    await client.query("ANALYZE task_status");
    // auto_explain reports the plan of every statement the function runs.
    const plans = await autoExplained(client, { planCacheMode: "force_generic_plan" }, async () => {
      const { rows } = await client.query("SELECT * FROM roster_claim($1, $2, $3, $4, $5, $6)", [T0 + 2_000_000_000, "agent-x", "tok", 30_000, "bulk", 256]);
      expect(rows).toHaveLength(256);
    });
    const pick = plans.find((plan) => plan.some((n) => n["Node Type"] === "LockRows"));
    expect(pick?.map((n) => n["Node Type"])).toEqual(expect.arrayContaining(["Limit", "LockRows"]));
    expect(pick?.map((n) => n["Node Type"])).not.toContain("Sort");
    expect(scansOfStatus(pick!).map((n) => `${n["Node Type"]} ${n["Index Name"]}`)).toEqual(["Index Scan task_status_claim"]);
    const lease = plans.find((plan) => plan.some((n) => n["Node Type"] === "ModifyTable" && n["Relation Name"] === "task_status"));
    // The leased rows, and a dependency's status for the claimed task's results, each by primary key.
    const leaseReads = scansOfStatus(lease!).filter((n) => n["Node Type"] !== "ModifyTable");
    expect(leaseReads.length).toBeGreaterThan(0);
    for (const n of leaseReads) expect(`${n["Node Type"]} ${n["Index Name"]}`).toBe("Index Scan task_status_pkey");
    // The picked tasks' dependencies and answers (migrations/postgres/0014): one read each over the ids, by index.
    const all = plans.flat();
    expect(all.filter((n) => n["Node Type"] === "Seq Scan" && ["task_dependencies", "human_requests"].includes(n["Relation Name"] ?? "")).map((n) => n["Relation Name"])).toEqual([]);
    expect(all.map((n) => n["Index Name"])).toEqual(expect.arrayContaining(["task_dependencies_pkey", "human_requests_task"]));
    // No statement of the claim reads a task table whole (the small tables, personas and the gates', may be scanned).
    for (const plan of plans) {
      expect(plan.filter((n) => n["Node Type"] === "Seq Scan" && ["task_status", "tasks", "task_events"].includes(n["Relation Name"] ?? "")).map((n) => n["Relation Name"])).toEqual([]);
    }
  });

  it("what the stall guard asks (the next ready task) is the same seek", async () => {
    const plan = await explain(PG_OLDEST_READY_SQL, ["worker", T0 + 2_000_000]);
    expect(plan.map((n) => n["Node Type"])).not.toContain("Sort");
    expect(scansOfStatus(plan).map((n) => `${n["Node Type"]} ${n["Index Name"]}`)).toEqual(["Index Scan task_status_claim"]);
  });

  it("completing a task finds its dependents through task_dependencies_dependents and their rows by primary key", async () => {
    const plan = await explain(PG_COMPLETE_DEPENDENCIES_SQL, [8, T0]);
    expect(plan.map((n) => n["Node Type"])).not.toContain("Seq Scan");
    expect(plan.map((n) => n["Index Name"]).filter(Boolean)).toEqual(expect.arrayContaining(["task_dependencies_dependents", "task_status_pkey"]));
  });

  it("the reaper's observation walks only the leased rows (task_status_agent)", async () => {
    const plan = await explain(PG_OBSERVE_LEASES_SQL, []);
    // By that partial index (an index scan, or a bitmap of it), then sorted by renewal stamp.
    expect(plan.map((n) => n["Index Name"]).filter(Boolean)).toEqual(["task_status_agent"]);
    expect(plan.map((n) => n["Node Type"])).not.toContain("Seq Scan");
  });
});
