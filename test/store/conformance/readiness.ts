import { expect, it } from "vitest";
import { collect } from "../../helpers/events.js";
import { claimOne, complete, enqueue, enqueueOne, status, type GetCtx } from "./support.js";

/** docs/ARCHITECTURE.md rule 2: readiness by unmet-dependency counter and run_at. */
export function readinessRules(get: GetCtx): void {
  it("rule 2: completing a task makes its waiting dependent pending in the same transaction", async () => {
    const ctx = get();
    const [a, b] = await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "a" },
      { ref: "b", persona: "reviewer", title: "b", dependsOn: ["a"] },
    ]);
    const ready = collect(ctx.store.events, "task:ready");
    const task = await claimOne(ctx);
    expect(task.id).toBe(a);
    ctx.clock.advance(1_000);
    await complete(ctx, task);
    ready.stop();
    const dependent = await ctx.store.tasks.get({ taskId: b! });
    expect(dependent.status).toBe("pending");
    expect(dependent.unmetDependencies).toBe(0);
    // task:ready names the readied task and its persona, so only that persona's producer wakes.
    expect(ready.items).toEqual([{ ids: [b], personas: ["reviewer"] }]);
    // The readiness event carries the completion's time: both were written by one transaction.
    const completed = (await ctx.store.tasks.events({ taskId: a! })).find((e) => e.type === "task:completed")!;
    const readied = dependent.events.find((e) => e.type === "task:ready")!;
    expect(readied.at).toBe(completed.at);
    expect(readied.id).toBeLessThan(completed.id);
  });

  it("rule 2: a task with two dependencies stays waiting until both are completed", async () => {
    const ctx = get();
    const [, , c] = await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "a" },
      { ref: "b", persona: "worker", title: "b" },
      { persona: "reviewer", title: "c", dependsOn: ["a", "b"] },
    ]);
    const first = await claimOne(ctx);
    await complete(ctx, first);
    let task = await ctx.store.tasks.get({ taskId: c! });
    expect([task.status, task.unmetDependencies]).toEqual(["waiting", 1]);
    const second = await claimOne(ctx);
    await complete(ctx, second);
    task = await ctx.store.tasks.get({ taskId: c! });
    expect([task.status, task.unmetDependencies]).toEqual(["pending", 0]);
  });

  it("rule 2: a waiting task is never claimed", async () => {
    const ctx = get();
    await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "a" },
      { persona: "reviewer", title: "b", dependsOn: ["a"] },
    ]);
    expect(await ctx.store.tasks.claim({ persona: "reviewer", agentId: "r", now: ctx.clock.now() })).toEqual([]);
  });

  it("rule 2: a delayed task is not claimed before its run_at", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx, { delayMs: 5_000 });
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "a", now: ctx.clock.now() })).toEqual([]);
    ctx.clock.advance(4_999);
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "a", now: ctx.clock.now() })).toEqual([]);
    ctx.clock.advance(1);
    expect((await claimOne(ctx)).id).toBe(id);
  });

  it("rule 2: listAvailable lists ready tasks best first without claiming them", async () => {
    const ctx = get();
    const [low, high] = await enqueue(ctx, [
      { persona: "worker", title: "low", priority: 0 },
      { persona: "worker", title: "high", priority: 5 },
      { persona: "worker", title: "later", delayMs: 60_000 },
    ]);
    const available = await ctx.store.tasks.listAvailable({ persona: "worker", now: ctx.clock.now() });
    expect(available.map((t) => t.id)).toEqual([high, low]);
    expect(await status(ctx, high!)).toBe("pending");
  });

  it("rule 2: nextRunAt reports the earliest future run_at, per persona and overall", async () => {
    const ctx = get();
    const now = ctx.clock.now();
    expect(await ctx.store.tasks.nextRunAt({ now })).toBeNull();
    await enqueue(ctx, [
      { persona: "worker", title: "ready" },
      { persona: "worker", title: "in 9s", delayMs: 9_000 },
      { persona: "worker", title: "in 5s", delayMs: 5_000 },
      { persona: "reviewer", title: "in 2s", delayMs: 2_000 },
    ]);
    expect(await ctx.store.tasks.nextRunAt({ now })).toBe(now + 2_000);
    expect(await ctx.store.tasks.nextRunAt({ persona: "worker", now })).toBe(now + 5_000);
    expect(await ctx.store.tasks.nextRunAt({ persona: "planner", now })).toBeNull();
  });
}
