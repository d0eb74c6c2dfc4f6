import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/index.js";
import { planNodes as nodes, usePostgres, type PlanNode } from "../helpers/postgres.js";
import { T0 } from "../helpers/store.js";
import { syncTestPersonas } from "../helpers/personas.js";

/**
 * The supervisor's one-round-trip functions (roster_claim, roster_complete_batch) on a
 * connection's first calls, on a queue just enqueued (20,000 tasks, no statistics yet), as
 * at a supervisor's start (issue 19's throughput target; migrations/postgres/0015). PostgreSQL
 * plans a plpgsql statement with the call's values for its first five runs on a
 * connection; with no statistics those plans took the 64 claimed ids for most of the
 * table and read task_status and tasks by sequential scan, on each pooled connection.
 * Both functions run with generic plans from their first call: every statement they run,
 * reported by auto_explain, reads the task tables by index, and the tasks end as they must.
 */
const server = await usePostgres();

const TASKS = 20_000;
const TASK_TABLES = ["tasks", "task_status", "task_events"];

describe.skipIf(!server.available)("postgres: the hot functions' first calls on a connection, before any ANALYZE", () => {
  let store: Store;
  let client: pg.Client;

  beforeAll(async () => {
    store = await openStore({ path: server.url(), now: T0 });
    await syncTestPersonas(store, T0);
    client = new pg.Client({ connectionString: server.url() });
    await client.connect();
    // No statistics until the test is done: autovacuum's ANALYZE would give the custom plans what they lack.
    for (const table of TASK_TABLES) await client.query(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);
    for (let i = 0; i < TASKS; i += 10_000) await store.tasks.enqueue({ tasks: Array.from({ length: 10_000 }, (_, j) => ({ persona: "worker", title: `task ${i + j}` })), now: T0 });
  });

  afterAll(async () => {
    await client?.end();
    await store?.close();
  });

  it("claims and completes with every statement reading the task tables by index, from the first call", async () => {
    const analyzed = await client.query("SELECT relname FROM pg_stat_user_tables WHERE relname = ANY($1) AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)", [TASK_TABLES]);
    expect(analyzed.rows).toEqual([]);
    const plans: PlanNode[][] = [];
    client.on("notice", (n: { message?: string }) => {
      const at = n.message?.indexOf("{") ?? -1;
      if (at >= 0 && /plan:/.test(n.message!)) plans.push(nodes((JSON.parse(n.message!.slice(at)) as { Plan: PlanNode }).Plan));
    });
    await client.query("LOAD 'auto_explain'");
    await client.query("SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET auto_explain.log_format = json; SET client_min_messages = log");
    const done: number[] = [];
    for (let call = 0; call < 2; call++) {
      const now = T0 + 1_000 + call;
      const claimed = await client.query<{ task_id: number; lease_token: string }>("SELECT * FROM roster_claim($1, $2, $3, $4, $5, $6)", [now, "agent-first", `tok${call}`, 30_000, "worker", 64]);
      expect(claimed.rows).toHaveLength(64);
      const ids = claimed.rows.map((r) => Number(r.task_id));
      const completed = await client.query<{ fallback: boolean; task_id: string }>("SELECT * FROM roster_complete_batch($1, $2, $3, $4, $5)", [
        ids,
        claimed.rows.map((r) => r.lease_token),
        ids.map(() => "{}"),
        now,
        null,
      ]);
      expect(completed.rows.map((r) => r.fallback)).toEqual(ids.map(() => false));
      done.push(...completed.rows.map((r) => Number(r.task_id)));
    }
    expect(new Set(done).size).toBe(128);
    await client.query("SET auto_explain.log_min_duration = -1");
    const statuses = await client.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM task_status GROUP BY status ORDER BY status");
    expect(statuses.rows.map((r) => `${r.status} ${r.n}`)).toEqual([`completed 128`, `pending ${TASKS - 128}`]);
    // Every statement of both functions, on both calls: the task tables by index only.
    expect(plans.length).toBeGreaterThan(10);
    const scans = plans.flat().filter((n) => n["Node Type"] === "Seq Scan" && TASK_TABLES.includes(n["Relation Name"] ?? ""));
    expect(scans.map((n) => n["Relation Name"])).toEqual([]);
  });
});
