import { expect, it } from "vitest";
import { TEST_LEASE_MS } from "../../helpers/personas.js";
import { LOST_LEASES_MIN, lostLeasesAllowed } from "../../../src/store/lost-leases.js";
import { claimOne, complete, enqueue, enqueueOne, eventTypes, fixedRandom, type GetCtx } from "./support.js";

/**
 * docs/ARCHITECTURE.md rule 6: the reaper returns expired leases; a lost lease is not
 * counted as an attempt but against a bound of its own (src/store/lost-leases.ts), and
 * the holder of a reaped lease that comes back gives it back.
 */
export function reaperRules(get: GetCtx): void {
  it("rule 6: the reaper returns an expired lease to pending with backoff, the attempt not counted", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const task = await claimOne(ctx, "worker", "agent-a");
    ctx.clock.advance(TEST_LEASE_MS - 1);
    expect((await ctx.store.maintenance.reapExpired({ now: ctx.clock.now() })).retried).toEqual([]);
    ctx.clock.advance(1);
    const now = ctx.clock.now();
    // worker: exponential, baseMs 1000, jitter 0.5; random 0.5 takes a quarter off (first lost lease: the first step).
    const result = await ctx.store.maintenance.reapExpired({ now, random: fixedRandom(0.5) });
    expect(result.retried).toEqual([{ taskId: id, leaseToken: task.leaseToken, persona: "worker", attempt: 1, runAt: now + 750 }]);
    expect(result.failed).toEqual([]);
    expect(await ctx.store.tasks.get({ taskId: id })).toMatchObject({
      status: "pending",
      attempts: 0,
      runAt: now + 750,
      assignedAgentId: null,
      leaseExpiresAt: null,
      error: { code: "LEASE_EXPIRED" },
    });
    expect((await eventTypes(ctx, id)).slice(-2)).toEqual(["lease:expired", "task:retrying"]);
    const retrying = (await ctx.store.tasks.events({ taskId: id })).at(-1)!;
    expect(retrying).toMatchObject({ attempt: 1, data: { counted: false, leasesLost: 1 } });
    ctx.clock.advance(749);
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-b", now: ctx.clock.now() })).toEqual([]);
    ctx.clock.advance(1);
    const again = await claimOne(ctx, "worker", "agent-b");
    expect(again.attempt).toBe(1);
    expect(again.leaseToken).not.toBe(task.leaseToken);
  });

  it("rule 6: a task on its last attempt whose lease is reaped goes back to pending, and completes", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx, { maxAttempts: 1 });
    const lost = await claimOne(ctx);
    ctx.clock.advance(TEST_LEASE_MS);
    const reaped = await ctx.store.maintenance.reapExpired({ now: ctx.clock.now(), random: fixedRandom(0) });
    expect(reaped).toMatchObject({ retried: [{ taskId: id, attempt: 1 }], failed: [] });
    ctx.clock.advance(60_000);
    const task = await claimOne(ctx, "worker", "agent-b");
    expect(task.attempt).toBe(1);
    // The first holder's late write is refused (rule 4); the second's completion is recorded.
    expect(await ctx.store.tasks.completeIfLeased({ taskId: id, leaseToken: lost.leaseToken, result: { late: true }, now: ctx.clock.now() })).toMatchObject({ ok: false, code: "LEASE_LOST" });
    await complete(ctx, task);
    expect(await ctx.store.tasks.get({ taskId: id })).toMatchObject({ status: "completed", attempts: 1, result: { ok: true } });
  });

  it("rule 6: a task that loses its lease every time ends failed (LEASE_EXPIRED) at its lost-lease bound, its dependents blocked", async () => {
    const ctx = get();
    // maxAttempts 1: the bound is LOST_LEASES_MIN (3); maxAttempts 5 would make it 5.
    const [id, dependent] = await enqueue(ctx, [
      { ref: "crash", persona: "worker", title: "kills its holder", maxAttempts: 1 },
      { persona: "reviewer", title: "after", dependsOn: ["crash"] },
    ]);
    expect(lostLeasesAllowed(1)).toBe(LOST_LEASES_MIN);
    for (let lost = 1; lost <= LOST_LEASES_MIN; lost++) {
      const task = await claimOne(ctx);
      expect(task.attempt).toBe(1);
      ctx.clock.advance(TEST_LEASE_MS);
      const result = await ctx.store.maintenance.reapExpired({ now: ctx.clock.now(), random: fixedRandom(0) });
      if (lost < LOST_LEASES_MIN) {
        expect(result.retried.map((r) => r.taskId)).toEqual([id]);
        ctx.clock.advance(60_000);
      } else {
        expect(result.failed).toEqual([{ taskId: id, leaseToken: task.leaseToken, persona: "worker", attempt: 1 }]);
      }
    }
    const failed = await ctx.store.tasks.get({ taskId: id! });
    expect(failed).toMatchObject({ status: "failed", attempts: 0, error: { code: "LEASE_EXPIRED" } });
    expect(failed.error?.message).toContain(`lease ${LOST_LEASES_MIN} of ${LOST_LEASES_MIN}`);
    expect((await ctx.store.tasks.get({ taskId: dependent! })).status).toBe("blocked");
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "a", now: ctx.clock.now() + 3_600_000 })).toEqual([]);
  });

  it("rule 6: a lost lease given back by its holder no longer counts; a give-back is fenced by the reaped token and taken once", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx, { maxAttempts: 1 });
    const reapOnce = async (): Promise<string> => {
      const task = await claimOne(ctx);
      ctx.clock.advance(TEST_LEASE_MS);
      expect((await ctx.store.maintenance.reapExpired({ now: ctx.clock.now(), random: fixedRandom(0) })).retried.map((r) => r.taskId)).toEqual([id]);
      ctx.clock.advance(60_000);
      return task.leaseToken;
    };
    const first = await reapOnce();
    const now = ctx.clock.now();
    // Not this agent's reaped lease, or not the last one reaped: nothing changes.
    expect(await ctx.store.tasks.giveBack({ leases: [{ taskId: id, leaseToken: "not-a-token" }], agentId: "agent-a", now })).toEqual({ given: [] });
    expect(await ctx.store.tasks.giveBack({ leases: [{ taskId: id, leaseToken: first }], agentId: "agent-a", now })).toEqual({ given: [{ taskId: id, leaseToken: first }] });
    expect(await ctx.store.tasks.giveBack({ leases: [{ taskId: id, leaseToken: first }], agentId: "agent-a", now })).toEqual({ given: [] });
    expect((await ctx.store.tasks.events({ taskId: id })).at(-1)).toMatchObject({ type: "lease:given-back", agentId: "agent-a", data: { leasesLost: 0 } });
    // Given back, the task may again lose LOST_LEASES_MIN - 1 leases before the reap that fails it.
    for (let lost = 1; lost < LOST_LEASES_MIN; lost++) await reapOnce();
    expect((await ctx.store.tasks.get({ taskId: id })).status).toBe("pending");
    const task = await claimOne(ctx);
    ctx.clock.advance(TEST_LEASE_MS);
    expect((await ctx.store.maintenance.reapExpired({ now: ctx.clock.now(), random: fixedRandom(0) })).failed.map((r) => r.taskId)).toEqual([id]);
    // A task the reap failed stays failed: terminal outcomes are final (`roster retry` is the way back).
    expect(await ctx.store.tasks.giveBack({ leases: [{ taskId: id, leaseToken: task.leaseToken }], agentId: "agent-a", now: ctx.clock.now() })).toEqual({ given: [] });
    expect((await ctx.store.tasks.get({ taskId: id })).status).toBe("failed");
    // roster retry starts the count again: the next reap retries.
    await ctx.store.tasks.retry({ taskId: id, now: ctx.clock.now() });
    await reapOnce();
    expect((await ctx.store.tasks.get({ taskId: id })).status).toBe("pending");
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
