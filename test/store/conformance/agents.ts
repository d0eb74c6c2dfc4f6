import { expect, it } from "vitest";
import { TEST_LEASE_MS } from "../../helpers/personas.js";
import { sessionEndRules } from "./session-ends.js";
import { enqueue, type Ctx, type GetCtx } from "./support.js";

async function register(ctx: Ctx, id: string, heartbeatTimeoutMs = 10_000) {
  return ctx.store.agents.register({ id, name: id, kind: "supervisor", heartbeatTimeoutMs, now: ctx.clock.now() });
}

/** docs/ARCHITECTURE.md rule 5: batched heartbeats and agent expiry. */
export function agentRules(get: GetCtx): void {
  it("rule 5: one heartbeat renews every lease the agent holds", async () => {
    const ctx = get();
    await register(ctx, "agent-a");
    await register(ctx, "agent-b");
    await enqueue(ctx, Array.from({ length: 4 }, (_, i) => ({ persona: "worker", title: `t${i}` })));
    const mine = await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 3, now: ctx.clock.now() });
    const theirs = await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-b", limit: 1, now: ctx.clock.now() });
    ctx.clock.advance(20_000);
    const result = await ctx.store.agents.heartbeat({ agentId: "agent-a", now: ctx.clock.now() });
    expect(result.agentActive).toBe(true);
    expect(result.renewed.map((r) => r.taskId).sort()).toEqual(mine.map((t) => t.id).sort());
    for (const task of mine) {
      expect((await ctx.store.tasks.get({ taskId: task.id })).leaseExpiresAt).toBe(ctx.clock.now() + TEST_LEASE_MS);
    }
    expect((await ctx.store.tasks.get({ taskId: theirs[0]!.id })).leaseExpiresAt).toBe(theirs[0]!.leaseExpiresAt);
    // Renewed leases survive past their first expiry.
    ctx.clock.advance(15_000);
    expect((await ctx.store.maintenance.reapExpired({ now: ctx.clock.now() })).retried.map((r) => r.taskId)).toEqual([theirs[0]!.id]);
  });

  it("rule 5: a heartbeat naming leases renews those and reports the ones no longer held", async () => {
    const ctx = get();
    await register(ctx, "agent-a");
    await enqueue(ctx, [
      { persona: "worker", title: "a" },
      { persona: "worker", title: "b" },
    ]);
    const [a, b] = await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 2, now: ctx.clock.now() });
    await ctx.store.tasks.completeIfLeased({ taskId: b!.id, leaseToken: b!.leaseToken, now: ctx.clock.now() });
    ctx.clock.advance(1_000);
    const refs = [a!, b!].map((t) => ({ taskId: t.id, leaseToken: t.leaseToken }));
    const result = await ctx.store.agents.heartbeat({ agentId: "agent-a", leases: refs, now: ctx.clock.now() });
    expect(result).toEqual({ agentActive: true, renewed: [refs[0]], lost: [refs[1]] });
  });

  it("rule 5: an agent whose heartbeat is older than its timeout is marked expired", async () => {
    const ctx = get();
    await register(ctx, "quiet", 10_000);
    await register(ctx, "alive", 10_000);
    ctx.clock.advance(6_000);
    await ctx.store.agents.heartbeat({ agentId: "alive", now: ctx.clock.now() });
    ctx.clock.advance(4_000);
    expect(await ctx.store.agents.expireStale({ now: ctx.clock.now() })).toEqual([]);
    ctx.clock.advance(1);
    expect(await ctx.store.agents.expireStale({ now: ctx.clock.now() })).toEqual(["quiet"]);
    expect((await ctx.store.agents.list()).map((a) => a.id)).toEqual(["alive"]);
    expect((await ctx.store.agents.get({ agentId: "quiet" }))?.status).toBe("expired");
    expect((await ctx.store.agents.list({ includeInactive: true })).map((a) => a.id).sort()).toEqual(["alive", "quiet"]);
  });

  it("rule 5: the agent list counts the leases each agent holds", async () => {
    const ctx = get();
    await register(ctx, "agent-a");
    await enqueue(ctx, [
      { persona: "worker", title: "a" },
      { persona: "worker", title: "b" },
    ]);
    await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 2, now: ctx.clock.now() });
    expect((await ctx.store.agents.get({ agentId: "agent-a" }))?.heldTasks).toBe(2);
  });

  it("rule 5: deregistering releases the agent's leases without counting the attempts, and its heartbeat is then refused", async () => {
    const ctx = get();
    await register(ctx, "agent-a");
    const ids = await enqueue(ctx, [
      { persona: "worker", title: "a" },
      { persona: "worker", title: "b" },
    ]);
    await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 2, now: ctx.clock.now() });
    const { released } = await ctx.store.agents.deregister({ agentId: "agent-a", now: ctx.clock.now() });
    expect(released.sort()).toEqual(ids.sort());
    for (const taskId of ids) expect(await ctx.store.tasks.get({ taskId })).toMatchObject({ status: "pending", attempts: 0, assignedAgentId: null });
    expect((await ctx.store.agents.heartbeat({ agentId: "agent-a", now: ctx.clock.now() })).agentActive).toBe(false);
    expect((await ctx.store.agents.get({ agentId: "agent-a" }))?.status).toBe("deregistered");
  });

  sessionEndRules(get);

  it("rule 5: heartbeat of an unknown agent reports it inactive and renews nothing", async () => {
    const ctx = get();
    expect(await ctx.store.agents.heartbeat({ agentId: "ghost", now: ctx.clock.now() })).toEqual({ agentActive: false, renewed: [], lost: [] });
  });
}
