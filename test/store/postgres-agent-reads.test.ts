import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { openStore, type Store } from "../../src/store/index.js";
import { useAdmin, usePostgres } from "../helpers/postgres.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";

/**
 * The reads and writes MCP agents use beside the supervisor's (issue 18's
 * lineage, completeOnce, leaseLoss, resultPage, enqueueGoal), on PostgreSQL (issue 19).
 */
const server = await usePostgres();

describe.skipIf(!server.available)("postgres: what MCP agents read and write", () => {
  const admin = useAdmin(server);
  let store: Store;
  let clock: ManualClock;
  let n = 0;
  beforeEach(async () => {
    const schema = `a${++n}`;
    const url = await admin.schema(schema);
    clock = new ManualClock(T0);
    store = await openStore({ path: url, now: T0, monotonic: () => clock.now() });
    await syncTestPersonas(store, T0);
  });
  afterEach(async () => {
    await store.close();
  });

  it("enqueueGoal writes the goal and its plan at once; the goal waits for every task of it and knows its lineage", async () => {
    const { goalId, ids, refs } = await store.tasks.enqueueGoal({
      goal: { persona: "reviewer", title: "ship it", description: "the goal" },
      tasks: [
        { ref: "a", persona: "worker", title: "build" },
        { ref: "b", persona: "worker", title: "test", dependsOn: ["a"] },
      ],
      createdBy: "agent-p",
      now: clock.now(),
    });
    expect(refs).toEqual({ a: ids[0], b: ids[1] });
    const goal = await store.tasks.get({ taskId: goalId });
    expect(goal).toMatchObject({ status: "waiting", unmetDependencies: 2, dependsOn: ids });
    expect(goal.children.map((c) => c.id)).toEqual(ids);
    const lineage = await store.tasks.lineage({ taskIds: [ids[1]!, 999, goalId] });
    expect(lineage).toEqual([
      { taskId: ids[1], rootId: goalId, parent: { id: goalId, title: "ship it", description: "the goal", persona: "reviewer" }, root: { id: goalId, title: "ship it", description: "the goal", persona: "reviewer" } },
      { taskId: goalId, rootId: goalId, parent: null, root: null },
    ]);
  });

  it("completeOnce: the same token again answers ALREADY_COMPLETED with the recorded result; another token LEASE_LOST", async () => {
    await store.tasks.enqueue({ tasks: [{ persona: "worker", title: "t" }], now: clock.now() });
    const [task] = await store.tasks.claim({ persona: "worker", agentId: "agent-a", now: clock.now() });
    const first = await store.tasks.completeOnce({ taskId: task!.id, leaseToken: task!.leaseToken, result: { answer: 42 }, now: clock.now() });
    expect(first).toEqual({ ok: true, outcome: "completed", attempt: 1, childIds: [], childRefs: {} });
    const again = await store.tasks.completeOnce({ taskId: task!.id, leaseToken: task!.leaseToken, result: { answer: 43 }, now: clock.now() });
    expect(again).toEqual({ ok: false, code: "ALREADY_COMPLETED", result: { answer: 42 }, childIds: [] });
    expect(await store.tasks.completeOnce({ taskId: task!.id, leaseToken: "other", now: clock.now() })).toEqual({ ok: false, code: "LEASE_LOST" });
    expect((await store.tasks.events({ taskId: task!.id })).filter((e) => e.type === "task:completed")).toHaveLength(1);
  });

  it("leaseLoss names what ended an agent's lease: cancelled, then taken by another agent's claim", async () => {
    const { ids } = await store.tasks.enqueue({ tasks: [{ persona: "worker", title: "t" }, { persona: "worker", title: "u" }], now: clock.now() });
    const [a] = await store.tasks.claim({ persona: "worker", agentId: "agent-a", now: clock.now() });
    // Still agent-a's: a token it gives that is not this lease's is unknown, not taken.
    expect(await store.tasks.leaseLoss({ taskId: a!.id, agentId: "agent-a" })).toEqual({ reason: "unknown", status: "claimed", at: null, by: null });
    clock.advance(5);
    await store.tasks.cancel({ taskId: a!.id, by: "planner-1", now: clock.now() });
    expect(await store.tasks.leaseLoss({ taskId: a!.id, agentId: "agent-a" })).toEqual({ reason: "cancelled", status: "cancelled", at: T0 + 5, by: "planner-1" });
    const [b] = await store.tasks.claim({ persona: "worker", agentId: "agent-a", now: clock.now() });
    expect(b!.id).toBe(ids[1]);
    await store.tasks.releaseIfLeased({ taskId: b!.id, leaseToken: b!.leaseToken, now: clock.now() });
    await store.tasks.claim({ persona: "worker", agentId: "agent-b", now: clock.now() });
    expect(await store.tasks.leaseLoss({ taskId: b!.id, agentId: "agent-a" })).toMatchObject({ reason: "released", status: "claimed", by: "agent-a" });
    expect(await store.tasks.leaseLoss({ taskId: b!.id, agentId: "agent-c" })).toEqual({ reason: "unknown", status: "claimed", at: null, by: null });
    await expect(store.tasks.leaseLoss({ taskId: 999 })).rejects.toMatchObject({ code: "TASK_NOT_FOUND" });
  });

  it("leaseLoss names a lease given back by a question for a person released, as on SQLite", async () => {
    await store.tasks.enqueue({ tasks: [{ persona: "worker", title: "t" }], now: clock.now() });
    const [task] = await store.tasks.claim({ persona: "worker", agentId: "agent-a", now: clock.now() });
    clock.advance(3);
    expect(await store.humans.askIfLeased({ taskId: task!.id, leaseToken: task!.leaseToken, question: "which branch?", now: clock.now() })).toEqual({ ok: true });
    expect(await store.tasks.leaseLoss({ taskId: task!.id, agentId: "agent-a" })).toEqual({ reason: "released", status: "awaiting_input", at: T0 + 3, by: "agent-a" });
  });

  it("resultPage pages a result's JSON text in characters, non-ASCII included, and says its full length", async () => {
    await store.tasks.enqueue({ tasks: [{ persona: "worker", title: "t" }], now: clock.now() });
    const [task] = await store.tasks.claim({ persona: "worker", agentId: "agent-a", now: clock.now() });
    const result = { text: "héllo wörld ✓ ".repeat(50) };
    await store.tasks.completeIfLeased({ taskId: task!.id, leaseToken: task!.leaseToken, result, now: clock.now() });
    const json = JSON.stringify(result);
    let text = "";
    for (let offset = 0; ; offset += 100) {
      const page = await store.tasks.resultPage({ taskId: task!.id, offset, limit: 100 });
      expect(page.totalChars).toBe(json.length);
      expect(page.status).toBe("completed");
      if (page.text === "") break;
      text += page.text;
    }
    expect(text).toBe(json);
  });
});
