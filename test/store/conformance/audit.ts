import { expect, it } from "vitest";
import { claimOne, enqueueOne, fixedRandom, snapshot, type GetCtx } from "./support.js";

/** docs/ARCHITECTURE.md rule 9: every transition writes its task_events row in the same transaction. */
export function auditRules(get: GetCtx): void {
  it("rule 9: every transition of a task's life writes a task_events row with agent, attempt and time", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const t0 = ctx.clock.now();
    let task = await claimOne(ctx, "worker", "agent-a");
    ctx.clock.advance(1);
    await ctx.store.tasks.startIfLeased({ taskId: id, leaseToken: task.leaseToken, now: ctx.clock.now() });
    ctx.clock.advance(1);
    await ctx.store.tasks.progressIfLeased({ taskId: id, leaseToken: task.leaseToken, fraction: 0.5, message: "half", now: ctx.clock.now() });
    ctx.clock.advance(1);
    await ctx.store.tasks.failIfLeased({ taskId: id, leaseToken: task.leaseToken, error: { message: "x" }, now: ctx.clock.now(), random: fixedRandom(0) });
    ctx.clock.advance(1_000);
    task = await claimOne(ctx, "worker", "agent-b");
    await ctx.store.tasks.releaseIfLeased({ taskId: id, leaseToken: task.leaseToken, now: ctx.clock.now() });
    task = await claimOne(ctx, "worker", "agent-b");
    ctx.clock.advance(1);
    await ctx.store.tasks.completeIfLeased({ taskId: id, leaseToken: task.leaseToken, result: "ok", now: ctx.clock.now() });
    const events = await ctx.store.tasks.events({ taskId: id });
    expect(events.map((e) => [e.type, e.agentId, e.attempt])).toEqual([
      ["task:enqueued", null, 0],
      ["task:claimed", "agent-a", 1],
      ["task:started", "agent-a", 1],
      ["task:progress", "agent-a", 1],
      ["task:retrying", "agent-a", 1],
      ["task:claimed", "agent-b", 2],
      ["task:released", "agent-b", 2],
      ["task:claimed", "agent-b", 2],
      ["task:completed", "agent-b", 2],
    ]);
    expect(events.map((e) => e.at - t0)).toEqual([0, 0, 1, 2, 3, 1_003, 1_003, 1_003, 1_004]);
    expect(events.every((e) => e.taskId === id)).toBe(true);
  });

  it("rule 9: cancel, retry and dependency changes write events too", async () => {
    const ctx = get();
    const a = await enqueueOne(ctx, { title: "a" });
    const b = await enqueueOne(ctx, { title: "b" });
    await ctx.store.tasks.addDependency({ taskId: b, dependsOn: a, by: "cli", now: ctx.clock.now() });
    await ctx.store.tasks.cancel({ taskId: a, by: "cli", now: ctx.clock.now() });
    await ctx.store.tasks.retry({ taskId: a, by: "cli", now: ctx.clock.now() });
    const types = async (taskId: number) => (await ctx.store.tasks.events({ taskId })).map((e) => e.type);
    expect(await types(a)).toEqual(["task:enqueued", "task:cancelled", "task:retried"]);
    expect(await types(b)).toEqual(["task:enqueued", "dependency:added", "task:blocked", "task:unblocked"]);
  });

  it("rule 9: agent actions write events", async () => {
    const ctx = get();
    const before = (await ctx.h.rowCounts()).task_events!;
    await ctx.store.agents.register({ id: "a", name: "a", kind: "mcp", heartbeatTimeoutMs: 1_000, now: ctx.clock.now() });
    await ctx.store.agents.register({ id: "b", name: "b", kind: "mcp", heartbeatTimeoutMs: 1_000, now: ctx.clock.now() });
    await ctx.store.agents.deregister({ agentId: "a", now: ctx.clock.now() });
    ctx.clock.advance(1_001);
    await ctx.store.agents.expireStale({ now: ctx.clock.now() });
    expect((await ctx.h.rowCounts()).task_events).toBe(before + 4);
  });

  it("rule 9: a transition that is refused leaves no event behind", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const task = await claimOne(ctx);
    const before = await snapshot(ctx, [id]);
    await expect(
      ctx.store.tasks.progressIfLeased({ taskId: id, leaseToken: task.leaseToken, fraction: 2, now: ctx.clock.now() }),
    ).rejects.toMatchObject({ code: "VALIDATION" });
    await expect(
      ctx.store.tasks.completeIfLeased({ taskId: id, leaseToken: task.leaseToken, result: { when: new Date() } as never, now: ctx.clock.now() }),
    ).rejects.toMatchObject({ code: "VALIDATION" });
    expect(await snapshot(ctx, [id])).toEqual(before);
  });
}
