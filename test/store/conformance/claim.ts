import { expect, it } from "vitest";
import { RosterError } from "../../../src/errors.js";
import { TEST_LEASE_MS } from "../../helpers/personas.js";
import { claimOne, complete, enqueue, enqueueOne, status, type GetCtx } from "./support.js";

/** docs/ARCHITECTURE.md rule 3: the claim is atomic, best first, and never hands one task to two claimers. */
export function claimRules(get: GetCtx): void {
  it("rule 3: claim picks the highest priority first, then the oldest", async () => {
    const ctx = get();
    const lowOld = await enqueueOne(ctx, { title: "low old", priority: 0 });
    ctx.clock.advance(10);
    const highOld = await enqueueOne(ctx, { title: "high old", priority: 5 });
    ctx.clock.advance(10);
    const lowNew = await enqueueOne(ctx, { title: "low new", priority: 0 });
    ctx.clock.advance(10);
    const highNew = await enqueueOne(ctx, { title: "high new", priority: 5 });
    const negative = await enqueueOne(ctx, { title: "negative", priority: -3 });
    const order: number[] = [];
    for (let i = 0; i < 5; i++) order.push((await claimOne(ctx)).id);
    expect(order).toEqual([highOld, highNew, lowOld, lowNew, negative]);
  });

  it("rule 3: claim takes up to N tasks in one call, best first", async () => {
    const ctx = get();
    const ids = await enqueue(ctx, [0, 1, 2, 3, 4].map((p) => ({ persona: "worker", title: `p${p}`, priority: p })));
    const first = await ctx.store.tasks.claim({ persona: "worker", agentId: "a", limit: 3, now: ctx.clock.now() });
    expect(first.map((t) => t.id)).toEqual([ids[4], ids[3], ids[2]]);
    const rest = await ctx.store.tasks.claim({ persona: "worker", agentId: "a", limit: 10, now: ctx.clock.now() });
    expect(rest.map((t) => t.id)).toEqual([ids[1], ids[0]]);
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "a", limit: 10, now: ctx.clock.now() })).toEqual([]);
  });

  it("rule 3: a claim bumps attempts and sets a fresh lease token and expiry", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx, { payload: { n: 1 }, description: "d" });
    const task = await claimOne(ctx, "worker", "agent-a");
    expect(task).toMatchObject({ id, attempt: 1, maxAttempts: 3, leaseMs: TEST_LEASE_MS, payload: { n: 1 }, description: "d", persona: "worker" });
    expect(task.leaseExpiresAt).toBe(ctx.clock.now() + TEST_LEASE_MS);
    expect(task.leaseToken.length).toBeGreaterThan(8);
    const stored = await ctx.store.tasks.get({ taskId: id });
    expect(stored).toMatchObject({ status: "claimed", attempts: 1, assignedAgentId: "agent-a", leaseExpiresAt: task.leaseExpiresAt });
  });

  it("rule 3: a claim's lease length can be given per call", async () => {
    const ctx = get();
    await enqueueOne(ctx);
    const task = await claimOne(ctx, "worker", "a", { leaseMs: 1_234 });
    expect(task.leaseExpiresAt).toBe(ctx.clock.now() + 1_234);
  });

  it("rule 3: each claim of the same task gets a different lease token", async () => {
    const ctx = get();
    await enqueueOne(ctx);
    const first = await claimOne(ctx);
    await ctx.store.tasks.releaseIfLeased({ taskId: first.id, leaseToken: first.leaseToken, now: ctx.clock.now() });
    const second = await claimOne(ctx);
    expect(second.id).toBe(first.id);
    expect(second.leaseToken).not.toBe(first.leaseToken);
  });

  it("rule 15: a persona's concurrency holds across every claimant: claims and claims by id of several agents never lease more at once", async () => {
    const ctx = get();
    // reviewer: concurrency 2 (test/helpers/personas.ts).
    const ids = await enqueue(ctx, Array.from({ length: 5 }, (_, i) => ({ persona: "reviewer", title: `r${i}` })));
    const first = await ctx.store.tasks.claim({ persona: "reviewer", agentId: "supervisor-a", limit: 1, now: ctx.clock.now() });
    const second = await ctx.store.tasks.claim({ persona: "reviewer", agentId: "mcp-b", limit: 5, now: ctx.clock.now() });
    expect([...first, ...second].map((t) => t.id)).toEqual([ids[0], ids[1]]);
    expect(await ctx.store.tasks.claim({ persona: "reviewer", agentId: "supervisor-c", limit: 5, now: ctx.clock.now() })).toEqual([]);
    expect(await ctx.store.tasks.claimById({ taskId: ids[4]!, agentId: "mcp-d", now: ctx.clock.now() })).toBeNull();
    expect(await Promise.all(ids.map((id) => status(ctx, id)))).toEqual(["claimed", "claimed", "pending", "pending", "pending"]);
    // Other personas are not held back by it.
    const [other] = await enqueue(ctx, [{ persona: "worker", title: "w" }]);
    expect((await ctx.store.tasks.claim({ persona: "worker", agentId: "mcp-d", now: ctx.clock.now() })).map((t) => t.id)).toEqual([other]);
    // A settled attempt frees its slot for whoever claims next; a started one still holds it.
    await ctx.store.tasks.startIfLeased({ taskId: first[0]!.id, leaseToken: first[0]!.leaseToken, now: ctx.clock.now() });
    expect(await ctx.store.tasks.claim({ persona: "reviewer", agentId: "supervisor-c", limit: 5, now: ctx.clock.now() })).toEqual([]);
    await ctx.store.tasks.completeIfLeased({ taskId: second[0]!.id, leaseToken: second[0]!.leaseToken, result: 1, now: ctx.clock.now() });
    const byId = await ctx.store.tasks.claimById({ taskId: ids[4]!, agentId: "mcp-d", now: ctx.clock.now() });
    expect(byId?.id).toBe(ids[4]);
    expect(await ctx.store.tasks.claim({ persona: "reviewer", agentId: "supervisor-c", limit: 5, now: ctx.clock.now() })).toEqual([]);
    expect(await Promise.all(ids.map((id) => status(ctx, id)))).toEqual(["in_progress", "completed", "pending", "pending", "claimed"]);
  });

  it("rule 3: concurrent claimers never receive the same task", async () => {
    const ctx = get();
    await enqueue(ctx, Array.from({ length: 40 }, (_, i) => ({ persona: "worker", title: `t${i}` })));
    const claims = await Promise.all(
      Array.from({ length: 20 }, (_, i) => ctx.store.tasks.claim({ persona: "worker", agentId: `agent-${i % 4}`, limit: 3, now: ctx.clock.now() })),
    );
    const ids = claims.flat().map((t) => t.id);
    expect(ids).toHaveLength(40);
    expect(new Set(ids).size).toBe(40);
  });

  it("rule 3: a claimed task carries the results of its direct dependencies", async () => {
    const ctx = get();
    const [a, , c] = await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "implement" },
      { ref: "b", persona: "worker", title: "docs" },
      { persona: "reviewer", title: "review", dependsOn: ["a", "b"] },
    ]);
    const first = await claimOne(ctx);
    await complete(ctx, first, { diff: "+1 line" });
    const second = await claimOne(ctx);
    await complete(ctx, second, { pages: 2 });
    const review = await claimOne(ctx, "reviewer");
    expect(review.id).toBe(c);
    expect(review.dependencies).toEqual([
      { id: a, title: "implement", persona: "worker", status: "completed", result: { diff: "+1 line" } },
      { id: second.id, title: "docs", persona: "worker", status: "completed", result: { pages: 2 } },
    ]);
  });

  it("rule 3: a claim of several tasks gives each its own dependencies' results and previous attempt, and none to the others", async () => {
    const ctx = get();
    // The dependencies are reviewers' tasks; the batch claimed is the workers' (room for 64).
    const [a, b, solo, failing, both, afterA] = await enqueue(ctx, [
      { ref: "a", persona: "reviewer", title: "a" },
      { ref: "b", persona: "reviewer", title: "b" },
      { persona: "worker", title: "solo" },
      { persona: "worker", title: "failing" },
      { persona: "worker", title: "both", dependsOn: ["a", "b"] },
      { persona: "worker", title: "after a", dependsOn: ["a"] },
    ]);
    for (const task of await ctx.store.tasks.claim({ persona: "reviewer", agentId: "r", limit: 2, now: ctx.clock.now() })) {
      await complete(ctx, task, { from: task.title });
    }
    // "failing" fails once, so that its next claim carries a previous attempt.
    const [first, second] = await ctx.store.tasks.claim({ persona: "worker", agentId: "w", limit: 2, now: ctx.clock.now() });
    expect([first!.id, second!.id]).toEqual([solo, failing]);
    await complete(ctx, first!);
    const failed = await ctx.store.tasks.failIfLeased({
      taskId: failing!,
      leaseToken: second!.leaseToken,
      error: { code: "ADAPTER_FAILED", message: "flaky", retryable: true },
      now: ctx.clock.now(),
    });
    expect(failed).toMatchObject({ ok: true, outcome: "retrying" });
    ctx.clock.advance(300_000);
    const batch = await ctx.store.tasks.claim({ persona: "worker", agentId: "w", limit: 10, now: ctx.clock.now() });
    const byTitle = new Map(batch.map((t) => [t.title, t]));
    expect([...byTitle.keys()].sort()).toEqual(["after a", "both", "failing"]);
    expect(byTitle.get("both")!.id).toBe(both);
    expect(byTitle.get("both")!.dependencies).toEqual([
      { id: a, title: "a", persona: "reviewer", status: "completed", result: { from: "a" } },
      { id: b, title: "b", persona: "reviewer", status: "completed", result: { from: "b" } },
    ]);
    expect(byTitle.get("after a")!.id).toBe(afterA);
    expect(byTitle.get("after a")!.dependencies).toEqual([{ id: a, title: "a", persona: "reviewer", status: "completed", result: { from: "a" } }]);
    expect(byTitle.get("failing")!.dependencies).toEqual([]);
    expect(byTitle.get("failing")!.previous).toMatchObject({ code: "ADAPTER_FAILED", message: "flaky", retryable: true });
    for (const title of ["both", "after a"]) expect(byTitle.get(title)!.previous).toBeUndefined();
  });

  it("rule 3: a claim of a persona with nothing ready returns no task", async () => {
    const ctx = get();
    await enqueueOne(ctx);
    expect(await ctx.store.tasks.claim({ persona: "reviewer", agentId: "a", limit: 5, now: ctx.clock.now() })).toEqual([]);
    expect(await ctx.store.tasks.claim({ persona: "nobody", agentId: "a", now: ctx.clock.now() })).toEqual([]);
  });

  it("rule 3: a claim limit that is not a positive integer is refused", async () => {
    const ctx = get();
    await enqueueOne(ctx);
    await expect(ctx.store.tasks.claim({ persona: "worker", agentId: "a", limit: 0, now: ctx.clock.now() })).rejects.toThrow(RosterError);
    await expect(ctx.store.tasks.claim({ persona: "worker", agentId: "a", limit: 0, now: ctx.clock.now() })).rejects.toThrow(/limit/);
  });
}
