import { expect, it } from "vitest";
import { claimOne, enqueueOne, fixedRandom, type GetCtx } from "./support.js";

/** docs/ARCHITECTURE.md rule 7: retry policy is code; the store records the run_at it returns. */
export function retryRules(get: GetCtx): void {
  it("rule 7: a retryable failure goes back to pending at now plus the policy's backoff", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    // worker: exponential, baseMs 1000, maxMs 60000, jitter 0.5.
    const expected = [1_000, 2_000];
    for (const delay of expected) {
      const task = await claimOne(ctx);
      const now = ctx.clock.now();
      const result = await ctx.store.tasks.failIfLeased({
        taskId: id,
        leaseToken: task.leaseToken,
        error: { message: "flaky", code: "ADAPTER_FAILED" },
        now,
        random: fixedRandom(0),
      });
      expect(result).toEqual({ ok: true, outcome: "retrying", runAt: now + delay, attempt: task.attempt, code: "ADAPTER_FAILED" });
      expect(await ctx.store.tasks.get({ taskId: id })).toMatchObject({ status: "pending", runAt: now + delay, error: { message: "flaky" } });
      ctx.clock.advance(delay);
    }
    const last = await claimOne(ctx);
    const result = await ctx.store.tasks.failIfLeased({ taskId: id, leaseToken: last.leaseToken, error: { message: "flaky" }, now: ctx.clock.now() });
    expect(result).toEqual({ ok: true, outcome: "failed", attempt: 3, blocked: [], code: "ADAPTER_FAILED" });
  });

  it("rule 7: jitter comes from the injected random source", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const task = await claimOne(ctx);
    const now = ctx.clock.now();
    const result = await ctx.store.tasks.failIfLeased({ taskId: id, leaseToken: task.leaseToken, error: { message: "x" }, now, random: fixedRandom(1) });
    // jitter 0.5 at random 1 halves the 1000 ms delay.
    expect(result).toMatchObject({ outcome: "retrying", runAt: now + 500 });
  });

  it("rule 7: per-task policy overrides the persona's", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx, { policy: { backoff: "fixed", baseMs: 200, maxMs: 200, jitter: 0 }, maxAttempts: 2 });
    const first = await claimOne(ctx);
    const now = ctx.clock.now();
    expect(await ctx.store.tasks.failIfLeased({ taskId: id, leaseToken: first.leaseToken, error: { message: "x" }, now })).toMatchObject({
      outcome: "retrying",
      runAt: now + 200,
    });
    ctx.clock.advance(200);
    const second = await claimOne(ctx);
    expect(second.maxAttempts).toBe(2);
    expect(await ctx.store.tasks.failIfLeased({ taskId: id, leaseToken: second.leaseToken, error: { message: "x" }, now: ctx.clock.now() })).toMatchObject({
      outcome: "failed",
    });
  });

  it("rule 7: a non-retryable failure fails the task at once whatever attempts are left", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const task = await claimOne(ctx);
    const result = await ctx.store.tasks.failIfLeased({
      taskId: id,
      leaseToken: task.leaseToken,
      error: { message: "bad request", code: "VALIDATION", retryable: false },
      now: ctx.clock.now(),
    });
    expect(result).toEqual({ ok: true, outcome: "failed", attempt: 1, blocked: [], code: "VALIDATION" });
    expect(await ctx.store.tasks.get({ taskId: id })).toMatchObject({ status: "failed", error: { message: "bad request", retryable: false } });
  });

  it("rule 7: an error object marked retryable false is not retried", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const task = await claimOne(ctx);
    const result = await ctx.store.tasks.failIfLeased({ taskId: id, leaseToken: task.leaseToken, error: { message: "no", retryable: false }, now: ctx.clock.now() });
    expect(result).toMatchObject({ outcome: "failed" });
  });

  it("rule 7: release gives the task back without counting the attempt", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const task = await claimOne(ctx);
    expect(await ctx.store.tasks.releaseIfLeased({ taskId: id, leaseToken: task.leaseToken, reason: "shutdown", delayMs: 100, now: ctx.clock.now() })).toEqual({
      ok: true,
      outcome: "released",
      attempt: 1,
      runAt: ctx.clock.now() + 100,
    });
    expect(await ctx.store.tasks.get({ taskId: id })).toMatchObject({ status: "pending", attempts: 0, runAt: ctx.clock.now() + 100 });
    ctx.clock.advance(100);
    expect((await claimOne(ctx)).attempt).toBe(1);
  });
}
