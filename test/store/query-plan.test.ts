import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TaskInput } from "../../src/store/index.js";
import { sqliteExplain } from "../../src/store/sqlite/introspect.js";
import { openTestStore, type TestStore } from "../helpers/store.js";

/**
 * docs/ARCHITECTURE.md rule 2: the claim is one index seek whatever the queue depth, and every
 * statement the supervisor runs per tick uses an index, never a scan of the task
 * tables. The SQL explained is the store's own text (HOT_QUERIES), not a copy.
 * Checked on 12k+ tasks of three personas, before and after ANALYZE.
 */
/** Lines of a plan that read a whole table or index; none is allowed here. */
function scans(plan: string[]): string[] {
  return plan.filter((line) => line.startsWith("SCAN "));
}

describe("query plans of the hot statements", () => {
  let t: TestStore;
  let taskIds: number[] = [];

  beforeAll(async () => {
    t = await openTestStore();
    const now = t.clock.now();
    const personas = ["worker", "reviewer", "planner"];
    for (const persona of personas) {
      const tasks: TaskInput[] = Array.from({ length: 4_000 }, (_, i) => ({
        persona,
        title: `${persona} ${i}`,
        priority: i % 7,
        ...(i % 10 === 0 ? { delayMs: 60_000 + i } : {}),
      }));
      taskIds.push(...(await t.store.tasks.enqueue({ tasks, now })).ids);
    }
    // Chains, so completing readies dependents.
    const chains: TaskInput[] = [];
    for (let i = 0; i < 300; i++) {
      chains.push({ ref: `a${i}`, persona: "worker", title: `a${i}` }, { persona: "reviewer", title: `b${i}`, dependsOn: [`a${i}`] });
    }
    await t.store.tasks.enqueue({ tasks: chains, now });
    await t.store.agents.register({ id: "agent-a", name: "a", kind: "supervisor", heartbeatTimeoutMs: 10_000, now });
    const claimed = await t.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 300, now });
    await t.store.tasks.settle({
      settlements: claimed.slice(0, 150).map((c) => ({ kind: "complete" as const, taskId: c.id, leaseToken: c.leaseToken, result: 1 })),
      now,
    });
  });

  afterAll(async () => {
    await t.close();
  });

  const cases = (label: string) => {
    it(`${label}: the claim is an index search of task_status_claim and no scan of the task tables`, () => {
      const plan = sqliteExplain(t.store, "claim", { agentId: "x", token: "t", leaseMs: 1_000, now: t.clock.now(), persona: "reviewer", limit: 10 });
      expect(plan.some((line) => /^SEARCH task_status USING (COVERING )?INDEX task_status_claim \(persona_id=\?\)/.test(line)), plan.join("\n")).toBe(true);
      expect(scans(plan), plan.join("\n")).toEqual([]);
      expect(plan.some((line) => line.includes("TEMP B-TREE")), plan.join("\n")).toBe(false);
    });

    it(`${label}: the one-task claim is the same index search of task_status_claim and no scan of the task tables`, () => {
      const plan = sqliteExplain(t.store, "claimFirst", { agentId: "x", token: "t", leaseMs: 1_000, now: t.clock.now(), persona: "reviewer", limit: 1 });
      expect(plan.some((line) => /^SEARCH task_status USING (COVERING )?INDEX task_status_claim \(persona_id=\?\)/.test(line)), plan.join("\n")).toBe(true);
      expect(scans(plan), plan.join("\n")).toEqual([]);
      expect(plan.some((line) => line.includes("TEMP B-TREE")), plan.join("\n")).toBe(false);
    });

    it(`${label}: the batched heartbeat searches the index of leased rows by agent`, () => {
      const plan = sqliteExplain(t.store, "heartbeat", { agentId: "agent-a", now: t.clock.now() });
      expect(plan.join("\n")).toMatch(/SEARCH task_status USING INDEX task_status_leased \(assigned_agent_id=\?\)/);
      expect(scans(plan)).toEqual([]);
    });

    // Sorted by stamp by the statement itself: only the leased rows are read and sorted
    // (an index ordered by the stamp was rewritten by every renewal; migration 0010).
    it(`${label}: the reaper's observation walks the index of leased rows, not the tasks`, () => {
      const plan = sqliteExplain(t.store, "observeLeases", {});
      expect(plan.join("\n")).toMatch(/SCAN task_status USING INDEX task_status_leased/);
      expect(plan.filter((line) => /^SCAN task_status$/.test(line))).toEqual([]);
    });

    it(`${label}: the reaper's observation of agents reads the active-agent index`, () => {
      const plan = sqliteExplain(t.store, "observeAgents", {});
      expect(plan.join("\n")).toMatch(/agents USING INDEX agents_active/);
    });

    it(`${label}: the stall guard's oldest-ready read is the claim's own seek`, () => {
      const plan = sqliteExplain(t.store, "oldestReady", { now: t.clock.now(), persona: "reviewer" });
      expect(plan.some((line) => /^SEARCH task_status USING (COVERING )?INDEX task_status_claim \(persona_id=\?\)/.test(line)), plan.join("\n")).toBe(true);
      expect(scans(plan), plan.join("\n")).toEqual([]);
      expect(plan.some((line) => line.includes("TEMP B-TREE")), plan.join("\n")).toBe(false);
    });

    it(`${label}: counts read the counters, not the tasks`, () => {
      const plan = sqliteExplain(t.store, "counts", {});
      expect(plan.join("\n")).not.toMatch(/task_status|tasks/);
    });

    it(`${label}: nextRunAt is one seek into the delayed tasks' run_at index, overall and per persona`, () => {
      for (const [name, params] of [
        ["nextRunAt", { now: t.clock.now() }],
        ["nextRunAtPersona", { now: t.clock.now(), persona: "worker" }],
      ] as const) {
        const plan = sqliteExplain(t.store, name, params);
        expect(plan.join("\n")).toMatch(/SEARCH task_status USING (COVERING )?INDEX task_status_delayed \(run_at>\?\)/);
        expect(scans(plan)).toEqual([]);
      }
    });

    it(`${label}: completing a task finds its dependents through the dependents index`, () => {
      const plan = sqliteExplain(t.store, "completeDependencies", { taskId: taskIds[0], now: t.clock.now() });
      expect(plan.join("\n")).toMatch(/SEARCH task_dependencies USING COVERING INDEX task_dependencies_dependents \(depends_on=\?\)/);
      expect(plan.join("\n")).toMatch(/SEARCH task_status USING INTEGER PRIMARY KEY/);
      expect(scans(plan)).toEqual([]);
    });

    // The statements the supervisor's batches run: each walks only its batch (json_each, a
    // virtual table of the statement's own argument) and seeks everything else by key.
    // (`c`: the batch's per-dependent counts, materialized from json_each by the statement itself).
    // A batch's own rows (json_each, a VALUES list and its alias) are read whole; the tables are not.
    const batchOnly = (plan: string[]) => scans(plan).filter((line) => !/^SCAN (json_each|c|batch)\b|^SCAN \d+-ROW VALUES CLAUSE$|^SCAN \d+ CONSTANT ROWS$/.test(line));

    it(`${label}: the batched completion seeks each task of its batch by primary key`, () => {
      const plan = sqliteExplain(t.store, "completeMany", [t.clock.now(), t.clock.now(), taskIds[0], "token", null, taskIds[1], "token", null]);
      expect(plan.join("\n")).toMatch(/SEARCH task_status USING INTEGER PRIMARY KEY/);
      expect(batchOnly(plan), plan.join("\n")).toEqual([]);
    });

    it(`${label}: the one-task completion seeks its task by primary key`, () => {
      const plan = sqliteExplain(t.store, "completeOne", { taskId: taskIds[0], leaseToken: "token", result: null, now: t.clock.now() });
      expect(plan.join("\n")).toMatch(/SEARCH task_status USING INTEGER PRIMARY KEY/);
      expect(scans(plan), plan.join("\n")).toEqual([]);
    });

    it(`${label}: the batched dependents' update and its readied-after read use the dependency indexes`, () => {
      const done = JSON.stringify(taskIds.slice(0, 3));
      const dec = sqliteExplain(t.store, "decrementDependentsMany", { done, now: t.clock.now() });
      expect(dec.join("\n")).toMatch(/SEARCH (task_dependencies|d) USING COVERING INDEX task_dependencies_dependents \(depends_on=\?\)/);
      expect(dec.join("\n")).toMatch(/SEARCH task_status USING INTEGER PRIMARY KEY/);
      expect(batchOnly(dec), dec.join("\n")).toEqual([]);
      const after = sqliteExplain(t.store, "readiedAfter", { ready: done, done });
      expect(batchOnly(after), after.join("\n")).toEqual([]);
    });

    it(`${label}: renewing named leases searches the index of leased rows by agent; the claimed tasks' details are primary-key reads`, () => {
      const renew = sqliteExplain(t.store, "renewSome", { agentId: "agent-a", leases: JSON.stringify([{ taskId: taskIds[0], leaseToken: "t" }]), now: t.clock.now() });
      expect(renew.join("\n")).toMatch(/SEARCH task_status USING INDEX task_status_leased \(assigned_agent_id=\?/);
      expect(batchOnly(renew), renew.join("\n")).toEqual([]);
      const details = sqliteExplain(t.store, "claimedDetails", [JSON.stringify(taskIds.slice(0, 3))]);
      expect(details.join("\n")).toMatch(/SEARCH (t|s) USING INTEGER PRIMARY KEY/);
      expect(batchOnly(details), details.join("\n")).toEqual([]);
    });

    it(`${label}: the running list reads the index of leased rows, not every task`, () => {
      const plan = sqliteExplain(t.store, "running", { persona: null, limit: 1_000 });
      expect(plan.join("\n")).toMatch(/SCAN s USING INDEX task_status_leased/);
      expect(plan.join("\n")).toMatch(/SEARCH t USING INTEGER PRIMARY KEY/);
      expect(plan.filter((line) => /^SCAN (t|tasks)\b/.test(line))).toEqual([]);
    });
  };

  describe("without statistics", () => cases("no ANALYZE"));

  describe("after ANALYZE", () => {
    beforeAll(() => {
      const db = new Database(t.path);
      db.exec("ANALYZE");
      db.close();
    });
    cases("after ANALYZE");
  });
});

/** task_counts as a full count of task_status would give it. */
async function fullCount(path: string): Promise<Record<string, Record<string, number>>> {
  const db = new Database(path, { readonly: true });
  const full = db.prepare("SELECT persona_id, status, count(*) AS n FROM task_status GROUP BY persona_id, status").all() as Array<{ persona_id: string; status: string; n: number }>;
  db.close();
  const expected: Record<string, Record<string, number>> = {};
  for (const row of full) (expected[row.persona_id] ??= {})[row.status] = row.n;
  return expected;
}

describe("trigger-kept counts", () => {
  // Claims and completions of leased tasks are counted by their statements (migration 0012,
  // src/store/sqlite/task-counts.ts), every other change by the trigger: both must agree.
  it("task_counts agrees with a full count through every path that claims or completes", async () => {
    const t = await openTestStore();
    try {
      const { store, clock } = t;
      const now = () => clock.now();
      const ids = (await store.tasks.enqueue({ tasks: Array.from({ length: 40 }, (_, i) => ({ persona: i % 2 ? "worker" : "reviewer", title: `t${i}` })), now: now() })).ids;
      const check = async (label: string) => expect(await store.tasks.counts(), label).toEqual(await fullCount(t.path));
      // One by one: claimed -> completed (start folded), and claimed -> in_progress -> completed.
      const [one] = await store.tasks.claim({ persona: "worker", agentId: "a", limit: 1, now: now() });
      await check("after a one-task claim");
      expect((await store.tasks.completeIfLeased({ taskId: one!.id, leaseToken: one!.leaseToken, result: 1, now: now() })).ok).toBe(true);
      const [two] = await store.tasks.claim({ persona: "worker", agentId: "a", limit: 1, now: now() });
      expect((await store.tasks.startIfLeased({ taskId: two!.id, leaseToken: two!.leaseToken, now: now() })).ok).toBe(true);
      await check("after a start");
      expect((await store.tasks.completeIfLeased({ taskId: two!.id, leaseToken: two!.leaseToken, result: 2, now: now() })).ok).toBe(true);
      await check("after one-task completions");
      // A lost lease completes nothing and counts nothing.
      expect((await store.tasks.completeIfLeased({ taskId: two!.id, leaseToken: two!.leaseToken, result: 2, now: now() })).ok).toBe(false);
      // By id.
      const byId = await store.tasks.claimById({ taskId: ids[0]!, agentId: "b", now: now() });
      expect(byId?.id).toBe(ids[0]);
      await check("after a claim by id");
      // Batches of two personas, some started, one stale lease, in one settle.
      const w = await store.tasks.claim({ persona: "worker", agentId: "a", limit: 6, now: now() });
      const r = await store.tasks.claim({ persona: "reviewer", agentId: "a", limit: 6, now: now() });
      await store.tasks.start({ starts: [w[0]!, w[1]!, r[0]!].map((c) => ({ taskId: c.id, leaseToken: c.leaseToken })), now: now() });
      const results = await store.tasks.settle({
        settlements: [...w, ...r, byId!]
          .map((c) => ({ kind: "complete" as const, taskId: c.id, leaseToken: c.leaseToken, result: c.id }))
          .concat([{ kind: "complete" as const, taskId: two!.id, leaseToken: two!.leaseToken, result: 0 }]),
        now: now(),
      });
      expect(w.length + r.length).toBeGreaterThan(4);
      expect(results.map((x) => (x.ok ? x.outcome : x.code))).toEqual([...Array(w.length + r.length + 1).fill("completed"), "LEASE_LOST"]);
      await check("after a batch of completions");
      // The supervisor's cycle: settle and claim in one transaction.
      const s = await store.tasks.claim({ persona: "reviewer", agentId: "a", limit: 3, now: now() });
      const out = await store.tasks.settleAndClaim!({
        settlements: s.map((c) => ({ kind: "complete" as const, taskId: c.id, leaseToken: c.leaseToken, result: 0 })),
        now: now(),
        claims: [{ persona: "reviewer", agentId: "a", limit: 3, now: now() }, { persona: "worker", agentId: "a", limit: 2, now: now() }],
      });
      expect(out.claimed.flat().length).toBeGreaterThan(0);
      await check("after a settle and claim");
    } finally {
      await t.close();
    }
  });


  it("task_counts agrees with a full count after a mixed workload", async () => {
    const t = await openTestStore();
    try {
      const { store, clock } = t;
      const ids = (await store.tasks.enqueue({ tasks: Array.from({ length: 60 }, (_, i) => ({ ref: `t${i}`, persona: i % 2 ? "worker" : "reviewer", title: `t${i}`, ...(i % 5 === 4 ? { dependsOn: [`t${i - 1}`] } : {}) })), now: clock.now() })).ids;
      for (const persona of ["worker", "reviewer"]) {
        const claimed = await store.tasks.claim({ persona, agentId: "a", limit: 20, now: clock.now() });
        await store.tasks.settle({
          settlements: claimed.map((c, i) =>
            i % 3 === 0
              ? { kind: "complete" as const, taskId: c.id, leaseToken: c.leaseToken }
              : i % 3 === 1
                ? { kind: "fail" as const, taskId: c.id, leaseToken: c.leaseToken, error: { message: "x" }, retryable: i % 2 === 0 }
                : { kind: "release" as const, taskId: c.id, leaseToken: c.leaseToken },
          ),
          now: clock.now(),
        });
      }
      await store.tasks.cancel({ taskId: ids[59]!, now: clock.now() });
      clock.advance(10_000_000);
      await store.maintenance.prune({ before: clock.now() });
      const db = new Database(t.path, { readonly: true });
      const full = db.prepare("SELECT persona_id, status, count(*) AS n FROM task_status GROUP BY persona_id, status").all() as Array<{ persona_id: string; status: string; n: number }>;
      db.close();
      const expected: Record<string, Record<string, number>> = {};
      for (const row of full) (expected[row.persona_id] ??= {})[row.status] = row.n;
      expect(await store.tasks.counts()).toEqual(expected);
      expect(Object.values(expected).flatMap((s) => Object.keys(s)).length).toBeGreaterThan(4);
    } finally {
      await t.close();
    }
  });
});
