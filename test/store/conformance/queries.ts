import { expect, it } from "vitest";
import { claimOne, complete, enqueue, type GetCtx } from "./support.js";

/** Reads: counts, list with filters and cursor pagination, get, events, running. */
export function queryRules(get: GetCtx): void {
  it("counts: tasks are counted per persona and state", async () => {
    const ctx = get();
    await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "a" },
      { persona: "worker", title: "b" },
      { persona: "worker", title: "c" },
      { persona: "reviewer", title: "r", dependsOn: ["a"] },
    ]);
    await complete(ctx, await claimOne(ctx));
    await claimOne(ctx);
    expect(await ctx.store.tasks.counts()).toEqual({
      worker: { completed: 1, claimed: 1, pending: 1 },
      reviewer: { pending: 1 },
    });
  });

  it("counts: counts can be limited to the subtree under one root task", async () => {
    const ctx = get();
    await enqueue(ctx, [{ persona: "planner", title: "goal" }]);
    await enqueue(ctx, [{ persona: "worker", title: "unrelated" }]);
    const plan = await claimOne(ctx, "planner");
    await ctx.store.tasks.completeIfLeased({
      taskId: plan.id,
      leaseToken: plan.leaseToken,
      children: [
        { ref: "x", persona: "worker", title: "x" },
        { persona: "reviewer", title: "y", dependsOn: ["x"] },
      ],
      now: ctx.clock.now(),
    });
    expect(await ctx.store.tasks.counts({ rootId: plan.id })).toEqual({
      planner: { completed: 1 },
      worker: { pending: 1 },
      reviewer: { waiting: 1 },
    });
  });

  it("list: filters by status, persona, parent and root", async () => {
    const ctx = get();
    const [goal] = await enqueue(ctx, [{ persona: "planner", title: "goal" }]);
    const [other] = await enqueue(ctx, [{ persona: "reviewer", title: "other" }]);
    const plan = await claimOne(ctx, "planner");
    const done = await ctx.store.tasks.completeIfLeased({
      taskId: plan.id,
      leaseToken: plan.leaseToken,
      children: [
        { persona: "worker", title: "c1" },
        { persona: "worker", title: "c2" },
      ],
      now: ctx.clock.now(),
    });
    const children = done.ok ? done.childIds : [];
    const ids = async (params: Parameters<typeof ctx.store.tasks.list>[0]) => (await ctx.store.tasks.list(params)).map((t) => t.id);
    expect(await ids({ status: "completed" })).toEqual([goal]);
    expect(await ids({ status: ["pending", "completed"] })).toEqual([goal, other, ...children]);
    expect(await ids({ persona: "worker" })).toEqual(children);
    expect(await ids({ parentId: goal! })).toEqual(children);
    expect(await ids({ rootId: goal! })).toEqual([goal, ...children]);
    expect(await ids({ persona: "reviewer", status: "completed" })).toEqual([]);
  });

  it("list: cursor pagination visits every task once", async () => {
    const ctx = get();
    const all = await enqueue(ctx, Array.from({ length: 23 }, (_, i) => ({ persona: "worker", title: `t${i}` })));
    const seen: number[] = [];
    let afterId = 0;
    for (;;) {
      const page = await ctx.store.tasks.list({ afterId, limit: 5 });
      if (page.length === 0) break;
      expect(page.length).toBeLessThanOrEqual(5);
      seen.push(...page.map((t) => t.id));
      afterId = page[page.length - 1]!.id;
    }
    expect(seen).toEqual(all);
    expect(await ctx.store.tasks.list({ limit: 0 })).toHaveLength(23);
  });

  it("get: returns a task with its dependencies, dependents, children and latest events", async () => {
    const ctx = get();
    const [a, b, c] = await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "a" },
      { ref: "b", persona: "worker", title: "b", dependsOn: ["a"] },
      { persona: "worker", title: "c", dependsOn: ["b"] },
    ]);
    await complete(ctx, await claimOne(ctx), { built: true });
    const detail = await ctx.store.tasks.get({ taskId: b!, eventLimit: 1 });
    expect(detail.dependencies).toEqual([{ id: a, title: "a", persona: "worker", status: "completed", result: { built: true } }]);
    expect(detail.dependents).toEqual([{ id: c, title: "c", persona: "worker", status: "waiting" }]);
    expect(detail.children).toEqual([]);
    expect(detail.events.map((e) => e.type)).toEqual(["task:ready"]);
    await expect(ctx.store.tasks.get({ taskId: 123_456 })).rejects.toMatchObject({ code: "TASK_NOT_FOUND" });
  });

  it("events: pages through a task's events after a cursor", async () => {
    const ctx = get();
    const [id] = await enqueue(ctx, [{ persona: "worker", title: "a" }]);
    const task = await claimOne(ctx);
    await complete(ctx, task);
    const all = await ctx.store.tasks.events({ taskId: id! });
    expect(all.map((e) => e.type)).toEqual(["task:enqueued", "task:claimed", "task:completed"]);
    expect((await ctx.store.tasks.events({ taskId: id!, afterId: all[0]!.id, limit: 1 })).map((e) => e.type)).toEqual(["task:claimed"]);
  });

  it("running: lists claimed and in-progress tasks with their progress", async () => {
    const ctx = get();
    await enqueue(ctx, [
      { persona: "worker", title: "a" },
      { persona: "reviewer", title: "b" },
      { persona: "worker", title: "c" },
    ]);
    const a = await claimOne(ctx, "worker", "agent-a");
    await claimOne(ctx, "reviewer", "agent-b");
    await ctx.store.tasks.startIfLeased({ taskId: a.id, leaseToken: a.leaseToken, now: ctx.clock.now() });
    await ctx.store.tasks.progressIfLeased({ taskId: a.id, leaseToken: a.leaseToken, fraction: 0.25, message: "a quarter", now: ctx.clock.now() });
    const running = await ctx.store.tasks.running();
    expect(running.map((r) => [r.title, r.status, r.assignedAgentId])).toEqual([
      ["a", "in_progress", "agent-a"],
      ["b", "claimed", "agent-b"],
    ]);
    expect(running[0]).toMatchObject({ progress: 0.25, progressMessage: "a quarter", attempt: 1, startedAt: ctx.clock.now() });
    expect((await ctx.store.tasks.running({ persona: "reviewer" })).map((r) => r.title)).toEqual(["b"]);
  });
}
