import { expect, it } from "vitest";
import { TEST_LEASE_MS } from "../../helpers/personas.js";
import { claimOne, enqueue, enqueueOne, eventTypes, fixedRandom, type GetCtx } from "./support.js";

/** docs/ARCHITECTURE.md rule 6: the reaper returns expired leases, and a lost attempt counts. */
export function reaperRules(get: GetCtx): void {
  it("rule 6: the reaper returns an expired lease to pending with backoff", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const task = await claimOne(ctx, "worker", "agent-a");
    ctx.clock.advance(TEST_LEASE_MS - 1);
    expect((await ctx.store.maintenance.reapExpired({ now: ctx.clock.now() })).retried).toEqual([]);
    ctx.clock.advance(1);
    const now = ctx.clock.now();
    // worker: exponential, baseMs 1000, jitter 0.5; random 0.5 takes a quarter off.
    const result = await ctx.store.maintenance.reapExpired({ now, random: fixedRandom(0.5) });
    expect(result.retried).toEqual([{ taskId: id, leaseToken: task.leaseToken, persona: "worker", attempt: 1, runAt: now + 750 }]);
    expect(result.failed).toEqual([]);
    expect(await ctx.store.tasks.get({ taskId: id })).toMatchObject({
      status: "pending",
      attempts: 1,
      runAt: now + 750,
      assignedAgentId: null,
      leaseExpiresAt: null,
      error: { code: "LEASE_EXPIRED" },
    });
    expect((await eventTypes(ctx, id)).slice(-2)).toEqual(["lease:expired", "task:retrying"]);
    ctx.clock.advance(749);
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-b", now: ctx.clock.now() })).toEqual([]);
    ctx.clock.advance(1);
    const again = await claimOne(ctx, "worker", "agent-b");
    expect(again.attempt).toBe(2);
    expect(again.leaseToken).not.toBe(task.leaseToken);
  });

  it("rule 6: a task that loses its lease on every attempt ends failed instead of looping", async () => {
    const ctx = get();
    const [id, dependent] = await enqueue(ctx, [
      { ref: "crash", persona: "worker", title: "kills its worker" },
      { persona: "reviewer", title: "after", dependsOn: ["crash"] },
    ]);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const task = await claimOne(ctx);
      expect(task.attempt).toBe(attempt);
      ctx.clock.advance(TEST_LEASE_MS);
      const result = await ctx.store.maintenance.reapExpired({ now: ctx.clock.now(), random: fixedRandom(0) });
      if (attempt < 3) {
        expect(result.retried.map((r) => r.taskId)).toEqual([id]);
        ctx.clock.advance(60_000);
      } else {
        expect(result.failed).toEqual([{ taskId: id, leaseToken: task.leaseToken, persona: "worker", attempt: 3 }]);
      }
    }
    expect(await ctx.store.tasks.get({ taskId: id! })).toMatchObject({ status: "failed", attempts: 3 });
    expect((await ctx.store.tasks.get({ taskId: dependent! })).status).toBe("blocked");
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "a", now: ctx.clock.now() + 3_600_000 })).toEqual([]);
  });

  it("rule 6: the reaper leaves current leases alone", async () => {
    const ctx = get();
    await enqueue(ctx, [
      { persona: "worker", title: "a" },
      { persona: "reviewer", title: "b" },
    ]);
    await claimOne(ctx, "worker");
    const reviewer = await claimOne(ctx, "reviewer"); // 10 s lease
    ctx.clock.advance(10_000);
    const result = await ctx.store.maintenance.reapExpired({ now: ctx.clock.now() });
    expect(result.retried.map((r) => r.taskId)).toEqual([reviewer.id]);
  });

  it("rule 6: the reaper also expires agents whose heartbeat is too old", async () => {
    const ctx = get();
    await ctx.store.agents.register({ id: "gone", name: "gone", kind: "supervisor", heartbeatTimeoutMs: 1_000, now: ctx.clock.now() });
    ctx.clock.advance(1_001);
    expect((await ctx.store.maintenance.reapExpired({ now: ctx.clock.now() })).expiredAgents).toEqual(["gone"]);
  });

  it("rule 6: an in-progress task whose lease expires is reaped like a claimed one", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const task = await claimOne(ctx);
    await ctx.store.tasks.startIfLeased({ taskId: task.id, leaseToken: task.leaseToken, now: ctx.clock.now() });
    ctx.clock.advance(TEST_LEASE_MS);
    expect((await ctx.store.maintenance.reapExpired({ now: ctx.clock.now() })).retried.map((r) => r.taskId)).toEqual([id]);
  });
}
