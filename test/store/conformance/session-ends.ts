import { expect, it } from "vitest";
import { LOST_LEASES_MIN } from "../../../src/store/lost-leases.js";
import { claimOne, complete, enqueue, enqueueOne, type Ctx, type GetCtx } from "./support.js";

async function register(ctx: Ctx, id: string) {
  return ctx.store.agents.register({ id, name: id, kind: "mcp", heartbeatTimeoutMs: 10_000, now: ctx.clock.now() });
}

/** Claims the task as a fresh agent, then ends that agent's session (or deregisters it as a supervisor's stop does). */
async function holdThenLeave(ctx: Ctx, agentId: string, sessionEnded: boolean): Promise<{ released: number[]; failed: number[] }> {
  await register(ctx, agentId);
  const task = await claimOne(ctx, "worker", agentId);
  expect(task.attempt).toBe(1);
  return ctx.store.agents.deregister({ agentId, now: ctx.clock.now(), sessionEnded });
}

/**
 * docs/ARCHITECTURE.md rule 6 (src/store/session-end.ts): a lease whose MCP session ended
 * holding it is released uncounted but lost, so it counts against the task's bound of lost
 * leases and the end that reaches it fails the task (AGENT_LEFT); a deregistration that is
 * not a session's end (a supervisor's stop, a server that stops) stays uncounted and unbounded.
 */
export function sessionEndRules(get: GetCtx): void {
  it("rule 6: a task whose sessions end holding it is released uncounted each time, and fails (AGENT_LEFT) at its lost-lease bound", async () => {
    const ctx = get();
    // maxAttempts 1: the bound is LOST_LEASES_MIN (3).
    const [id, dependent] = await enqueue(ctx, [
      { ref: "crash", persona: "worker", title: "crashes its client", maxAttempts: 1 },
      { persona: "reviewer", title: "after", dependsOn: ["crash"] },
    ]);
    for (let lost = 1; lost < LOST_LEASES_MIN; lost++) {
      expect(await holdThenLeave(ctx, `mcp-${lost}`, true)).toEqual({ released: [id], failed: [] });
      // Back to pending at once, the attempt not counted; its release says which lost lease it was.
      expect(await ctx.store.tasks.get({ taskId: id! })).toMatchObject({ status: "pending", attempts: 0, runAt: ctx.clock.now(), assignedAgentId: null, error: null });
      const released = (await ctx.store.tasks.events({ taskId: id! })).at(-1)!;
      expect(released).toMatchObject({ type: "task:released", agentId: `mcp-${lost}` });
      expect(released.data).toMatchObject({ reason: expect.stringContaining(`session ended: the MCP session of mcp-${lost} ended holding it; lease ${lost} of ${LOST_LEASES_MIN}`) });
    }
    expect(await holdThenLeave(ctx, "mcp-last", true)).toEqual({ released: [], failed: [id] });
    const failed = await ctx.store.tasks.get({ taskId: id! });
    expect(failed).toMatchObject({ status: "failed", attempts: 0, error: { code: "AGENT_LEFT" } });
    expect(failed.error?.message).toContain(`the MCP session of mcp-last ended holding it`);
    expect(failed.error?.message).toContain(`${LOST_LEASES_MIN} of ${LOST_LEASES_MIN} leases the task may lose are lost`);
    expect((await ctx.store.tasks.events({ taskId: id! })).at(-1)).toMatchObject({ type: "task:failed", data: { counted: false, leasesLost: LOST_LEASES_MIN, error: { code: "AGENT_LEFT" } } });
    expect((await ctx.store.tasks.get({ taskId: dependent! })).status).toBe("blocked");
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "mcp-last", now: ctx.clock.now() + 3_600_000 })).toEqual([]);
    // roster retry starts the count again.
    await ctx.store.tasks.retry({ taskId: id!, now: ctx.clock.now() });
    expect(await holdThenLeave(ctx, "mcp-after-retry", true)).toEqual({ released: [id], failed: [] });
  });

  it("rule 6: a task one session ended holding completes on its next claim", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx, { maxAttempts: 1 });
    expect(await holdThenLeave(ctx, "mcp-gone", true)).toEqual({ released: [id], failed: [] });
    await register(ctx, "mcp-next");
    const task = await claimOne(ctx, "worker", "mcp-next");
    expect(task.attempt).toBe(1);
    await complete(ctx, task);
    expect(await ctx.store.tasks.get({ taskId: id })).toMatchObject({ status: "completed", attempts: 1, result: { ok: true } });
  });

  it("rule 10: a deregistration that is not a session's end (a supervisor's stop) releases uncounted and unbounded", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx, { maxAttempts: 1 });
    for (let stop = 1; stop <= LOST_LEASES_MIN * 2; stop++) {
      expect(await holdThenLeave(ctx, `supervisor-${stop}`, false)).toEqual({ released: [id], failed: [] });
      expect(await ctx.store.tasks.get({ taskId: id })).toMatchObject({ status: "pending", attempts: 0, error: null });
      expect((await ctx.store.tasks.events({ taskId: id })).at(-1)).toMatchObject({ type: "task:released", data: { reason: "agent deregistered" } });
    }
    // Its lost leases were not counted: one session's end still only releases it.
    expect(await holdThenLeave(ctx, "mcp-once", true)).toEqual({ released: [id], failed: [] });
  });
}
