import { expect, it } from "vitest";
import { claimOne, complete, enqueue, enqueueOne, eventTypes, expectRefused, status, type Ctx, type GetCtx } from "./support.js";

async function failNow(ctx: Ctx, persona = "worker"): Promise<number> {
  const task = await claimOne(ctx, persona);
  const result = await ctx.store.tasks.failIfLeased({ taskId: task.id, leaseToken: task.leaseToken, error: { message: "broken", retryable: false}, now: ctx.clock.now() });
  expect(result).toMatchObject({ ok: true, outcome: "failed" });
  return task.id;
}

/** Task states: blocked, cancel, manual retry, and dependencies added later. */
export function graphRules(get: GetCtx): void {
  it("states: a task whose dependency fails becomes blocked, and so do its own dependents, transitively", async () => {
    const ctx = get();
    const [a, b, c] = await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "a" },
      { ref: "b", persona: "reviewer", title: "b", dependsOn: ["a"] },
      { ref: "c", persona: "reviewer", title: "c", dependsOn: ["b"] },
    ]);
    const task = await claimOne(ctx);
    const result = await ctx.store.tasks.failIfLeased({ taskId: a!, leaseToken: task.leaseToken, error: { message: "x", retryable: false}, now: ctx.clock.now() });
    expect(result).toMatchObject({ outcome: "failed" });
    expect((result as { blocked: number[] }).blocked.sort()).toEqual([b, c]);
    expect([await status(ctx, b!), await status(ctx, c!)]).toEqual(["blocked", "blocked"]);
    expect(await eventTypes(ctx, c!)).toContain("task:blocked");
  });

  it("states: retrying a failed dependency returns its blocked dependents to waiting, and completing it readies them", async () => {
    const ctx = get();
    const [a, b, c] = await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "a" },
      { ref: "b", persona: "reviewer", title: "b", dependsOn: ["a"] },
      { ref: "c", persona: "reviewer", title: "c", dependsOn: ["b"] },
    ]);
    await failNow(ctx);
    const retried = await ctx.store.tasks.retry({ taskId: a!, by: "cli", now: ctx.clock.now() });
    expect(retried.status).toBe("pending");
    expect(retried.unblocked.sort()).toEqual([b, c]);
    expect(await ctx.store.tasks.get({ taskId: a! })).toMatchObject({ status: "pending", attempts: 0 });
    expect([await status(ctx, b!), await status(ctx, c!)]).toEqual(["waiting", "waiting"]);
    await complete(ctx, await claimOne(ctx));
    expect(await status(ctx, b!)).toBe("pending");
  });

  it("states: a dependent stays blocked while another of its dependencies is still failed", async () => {
    const ctx = get();
    const [a, x, d] = await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "a" },
      { ref: "x", persona: "worker", title: "x" },
      { persona: "reviewer", title: "d", dependsOn: ["a", "x"] },
    ]);
    await failNow(ctx);
    await failNow(ctx);
    expect((await ctx.store.tasks.retry({ taskId: a!, now: ctx.clock.now() })).unblocked).toEqual([]);
    expect(await status(ctx, d!)).toBe("blocked");
    expect((await ctx.store.tasks.retry({ taskId: x!, now: ctx.clock.now() })).unblocked).toEqual([d]);
    expect(await status(ctx, d!)).toBe("waiting");
  });

  it("states: retrying a task whose own dependency is still failed leaves it blocked", async () => {
    const ctx = get();
    const [, b] = await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "a" },
      { ref: "b", persona: "reviewer", title: "b", dependsOn: ["a"] },
    ]);
    await failNow(ctx);
    await ctx.store.tasks.cancel({ taskId: b!, now: ctx.clock.now() });
    expect((await ctx.store.tasks.retry({ taskId: b!, now: ctx.clock.now() })).status).toBe("blocked");
  });

  it("states: cancelling a task blocks its dependents, and only unfinished tasks can be cancelled", async () => {
    const ctx = get();
    const [a, b] = await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "a" },
      { persona: "reviewer", title: "b", dependsOn: ["a"] },
    ]);
    expect(await ctx.store.tasks.cancel({ taskId: a!, reason: "not needed", by: "cli", now: ctx.clock.now() })).toEqual({ cancelled: [a], blocked: [b] });
    expect(await status(ctx, a!)).toBe("cancelled");
    expect(await status(ctx, b!)).toBe("blocked");
    await expectRefused(ctx, () => ctx.store.tasks.cancel({ taskId: a!, now: ctx.clock.now() }), "INVALID_STATE", ["cancelled"], [a!]);
    await expectRefused(ctx, () => ctx.store.tasks.cancel({ taskId: 99_999, now: ctx.clock.now() }), "TASK_NOT_FOUND", ["taskId", "99999"]);
  });

  it("states: only failed or cancelled tasks can be retried", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    await expectRefused(ctx, () => ctx.store.tasks.retry({ taskId: id, now: ctx.clock.now() }), "INVALID_STATE", ["pending"], [id]);
  });

  it("dependencies: addDependency refuses a cycle and names its path", async () => {
    const ctx = get();
    const [a, b, c] = await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "a" },
      { ref: "b", persona: "worker", title: "b", dependsOn: ["a"] },
      { ref: "c", persona: "worker", title: "c", dependsOn: ["b"] },
    ]);
    const error = await expectRefused(
      ctx,
      () => ctx.store.tasks.addDependency({ taskId: a!, dependsOn: c!, now: ctx.clock.now() }),
      "DEPENDENCY_CYCLE",
      ["dependsOn", `${a} -> ${c} -> ${b} -> ${a}`],
      [a!, b!, c!],
    );
    expect(error.details?.cycle).toEqual([a, c, b, a]);
  });

  it("dependencies: addDependency refuses a self-dependency and an unknown task", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    await expectRefused(ctx, () => ctx.store.tasks.addDependency({ taskId: id, dependsOn: id, now: ctx.clock.now() }), "SELF_DEPENDENCY", ["dependsOn"], [id]);
    await expectRefused(ctx, () => ctx.store.tasks.addDependency({ taskId: id, dependsOn: 77_777, now: ctx.clock.now() }), "DEPENDENCY_NOT_FOUND", ["dependsOn", "77777"], [id]);
    await expectRefused(ctx, () => ctx.store.tasks.addDependency({ taskId: 77_777, dependsOn: id, now: ctx.clock.now() }), "TASK_NOT_FOUND", ["taskId", "77777"], [id]);
  });

  it("dependencies: a dependency added on an unfinished task makes a pending task wait for it", async () => {
    const ctx = get();
    const [first, second] = await enqueue(ctx, [
      { persona: "worker", title: "first" },
      { persona: "reviewer", title: "second" },
    ]);
    expect(await ctx.store.tasks.addDependency({ taskId: second!, dependsOn: first!, now: ctx.clock.now() })).toEqual({ status: "waiting" });
    expect(await ctx.store.tasks.claim({ persona: "reviewer", agentId: "r", now: ctx.clock.now() })).toEqual([]);
    await complete(ctx, await claimOne(ctx));
    expect(await status(ctx, second!)).toBe("pending");
  });

  it("dependencies: a dependency added on a failed task blocks the task and its dependents", async () => {
    const ctx = get();
    const bad = await enqueueOne(ctx);
    await failNow(ctx);
    const [t, u] = await enqueue(ctx, [
      { ref: "t", persona: "reviewer", title: "t" },
      { persona: "reviewer", title: "u", dependsOn: ["t"] },
    ]);
    expect(await ctx.store.tasks.addDependency({ taskId: t!, dependsOn: bad, now: ctx.clock.now() })).toEqual({ status: "blocked" });
    expect(await status(ctx, u!)).toBe("blocked");
  });

  it("dependencies: a dependency cannot be added to a task that already runs", async () => {
    const ctx = get();
    const [a, b] = await enqueue(ctx, [
      { persona: "worker", title: "a" },
      { persona: "worker", title: "b" },
    ]);
    await claimOne(ctx);
    await expectRefused(ctx, () => ctx.store.tasks.addDependency({ taskId: a!, dependsOn: b!, now: ctx.clock.now() }), "INVALID_STATE", ["taskId"], [a!, b!]);
  });
}
