import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type ClaimedTask, type Store } from "../../src/store/index.js";
import { PG_COMPLETE_MANY_SQL, PG_START_MANY_SQL } from "../../src/store/postgres/batch-sql.js";
import { PG_RENEW_SQL } from "../../src/store/postgres/agents.js";
import { autoExplained, usePostgres, type PlanNode } from "../helpers/postgres.js";
import { T0 } from "../helpers/store.js";

/**
 * The batched lease writes (a completion batch, a start batch, a heartbeat's renewal) find their rows by primary key
 * whatever the statistics say (migrations/postgres/0016). Here ANALYZE runs while every task is
 * still pending, as autovacuum's does on a queue between drains, and then 256 tasks are leased
 * to one agent: the statistics now show the partial index of leased rows (task_status_agent) as
 * holding about one row. A statement that tests the lease's state in its WHERE could read its
 * rows through that index and join the whole batch to each of them: 256 × 256 rows compared,
 * where a seek per task compares 256. Each statement runs under EXPLAIN ANALYZE inside a
 * transaction rolled back, with the plan PostgreSQL picks for the values (a connection's first
 * runs) and with the generic plan it settles on after them.
 */
const server = await usePostgres();

type AnalyzedNode = PlanNode & { "Actual Loops"?: number; "Rows Removed by Join Filter"?: number; "Actual Rows"?: number };

const BATCH = 256;

describe.skipIf(!server.available)("postgres: the batched settle's plan after statistics taken with nothing leased", () => {
  let store: Store;
  let client: pg.Client;
  let leases: ClaimedTask[];

  beforeAll(async () => {
    store = await openStore({ path: server.url(), now: T0 });
    client = new pg.Client({ connectionString: server.url() });
    await client.connect();
    // A persona without a concurrency of its own, so one claim takes the whole batch.
    await client.query(`INSERT INTO personas (id, name, definition, config, created_at, updated_at) VALUES ('bulk', 'bulk', '', '{}', ${T0}, ${T0})`);
    await store.tasks.enqueue({ tasks: Array.from({ length: 4_000 }, (_, i) => ({ persona: "bulk", title: `t ${i}` })), now: T0 });
    await client.query("ANALYZE");
    await store.agents.register({ id: "agent-a", name: "agent-a", kind: "supervisor", heartbeatTimeoutMs: 600_000, now: T0 });
    leases = await store.tasks.claim({ persona: "bulk", agentId: "agent-a", limit: BATCH, leaseMs: 600_000, now: T0 + 1 });
    expect(leases).toHaveLength(BATCH);
  }, 120_000);

  afterAll(async () => {
    await client?.end();
    await store?.close();
  });

  /** The plans of `run`'s statements, each node with what it did, in a transaction rolled back. */
  const analyzed = (generic: boolean, run: () => Promise<unknown>): Promise<AnalyzedNode[][]> =>
    autoExplained<AnalyzedNode>(client, { planCacheMode: generic ? "force_generic_plan" : "force_custom_plan", analyze: true }, run);

  /**
   * The plan that updates task_status: its rows not read through the index of leased rows, the
   * batch read once, and no join that compares the batch with each row. With the batch's values
   * the planner may scan this small table whole instead of seeking (as cheap at 4,000 rows); the
   * generic plan, which cannot tell the batch's size, seeks by primary key.
   */
  function expectNoJoinPerRow(plans: AnalyzedNode[][], rows: number, generic: boolean) {
    const update = plans.find((plan) => plan.some((n) => n["Node Type"] === "ModifyTable" && n["Relation Name"] === "task_status"));
    expect(update, "a plan that updates task_status").toBeDefined();
    const reads = update!.filter((n) => n["Relation Name"] === "task_status" && n["Node Type"] !== "ModifyTable");
    expect(reads.map((n) => n["Index Name"])).not.toContain("task_status_agent");
    if (generic) expect(reads.map((n) => `${n["Node Type"]} ${n["Index Name"]}`)).toEqual(["Index Scan task_status_pkey"]);
    const compared = update!.reduce((sum, n) => sum + (n["Rows Removed by Join Filter"] ?? 0), 0);
    expect(compared, "rows a join compared and threw away").toBeLessThan(rows);
    for (const n of update!.filter((x) => x["Node Type"] === "Function Scan")) expect(n["Actual Loops"], "the batch read once").toBe(1);
  }

  for (const generic of [false, true]) {
    const mode = generic ? "the generic plan" : "a plan for the values";
    it(`the one-round-trip completion (roster_complete_batch), ${mode}`, async () => {
      let completed = 0;
      const plans = await analyzed(generic, async () => {
        const { rows } = await client.query("SELECT * FROM roster_complete_batch($1::bigint[], $2::text[], $3::text[], $4::bigint, NULL)", [
          leases.map((t) => t.id),
          leases.map((t) => t.leaseToken),
          leases.map(() => "1"),
          T0 + 2,
        ]);
        completed = rows.filter((r: { fallback: boolean }) => !r.fallback).length;
      });
      expect(completed).toBe(BATCH);
      expectNoJoinPerRow(plans, BATCH, generic);
    });

    it(`completeMany's statement (the transactional settle), ${mode}`, async () => {
      let completed = 0;
      const plans = await analyzed(generic, async () => {
        const { rows } = await client.query(PG_COMPLETE_MANY_SQL, [leases.map((t) => t.id), leases.map((t) => t.leaseToken), leases.map(() => "1"), T0 + 2]);
        completed = rows.length;
      });
      expect(completed).toBe(BATCH);
      expectNoJoinPerRow(plans, BATCH, generic);
    });

    it(`startMany's statement, ${mode}`, async () => {
      let started = 0;
      const plans = await analyzed(generic, async () => {
        const { rows } = await client.query(PG_START_MANY_SQL, [leases.map((t) => t.id), leases.map((t) => t.leaseToken), leases.map(() => T0 + 2)]);
        started = rows.length;
      });
      expect(started).toBe(BATCH);
      expectNoJoinPerRow(plans, BATCH, generic);
    });

    it(`a heartbeat's renewal, ${mode}`, async () => {
      let renewed = 0;
      const plans = await analyzed(generic, async () => {
        renewed = (await client.query(PG_RENEW_SQL, [T0 + 2, leases.map((t) => t.id)])).rows.length;
      });
      expect(renewed).toBe(BATCH);
      expectNoJoinPerRow(plans, BATCH, generic);
    });
  }

  it("a heartbeat naming its leases renews the current ones and reports a stale token lost", async () => {
    const given = leases.slice(0, 4).map((t, i) => ({ taskId: t.id, leaseToken: i === 0 ? `${t.leaseToken}x` : t.leaseToken }));
    const beat = await store.agents.heartbeat({ agentId: "agent-a", now: T0 + 3, leases: given });
    expect(beat.renewed.map((l) => l.taskId)).toEqual(given.slice(1).map((l) => l.taskId));
    expect(beat.lost).toEqual([given[0]]);
    const all = await store.agents.heartbeat({ agentId: "agent-a", now: T0 + 4 });
    expect(all.renewed).toHaveLength(BATCH);
  });

  it("a stale token in the batch is refused, the others completed (fencing through the new statements)", async () => {
    const stale = leases.slice(0, 2).map((t) => ({ kind: "complete" as const, taskId: t.id, leaseToken: `${t.leaseToken}x`, result: 1 }));
    const live = leases.slice(2, 6).map((t) => ({ kind: "complete" as const, taskId: t.id, leaseToken: t.leaseToken, result: 1 }));
    const results = await store.tasks.settle({ settlements: [...stale, ...live], now: T0 + 3 });
    expect(results.map((r) => (r.ok ? r.outcome : r.code))).toEqual(["LEASE_LOST", "LEASE_LOST", "completed", "completed", "completed", "completed"]);
    const { rows } = await client.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM task_status WHERE task_id = ANY($1) GROUP BY status ORDER BY status", [
      leases.slice(0, 6).map((t) => t.id),
    ]);
    expect(rows.map((r) => `${r.status} ${r.n}`)).toEqual(["claimed 2", "completed 4"]);
  });
});
