import { expect, it } from "vitest";
import { claimOne, enqueueOne, eventTypes, fixedRandom, status, type Ctx, type GetCtx } from "./support.js";

/**
 * The store's side of streaming budgets (docs/economics.md, "Streaming usage and the in-flight
 * rule"): the read the supervisor's budget watch and MCP report_progress check against, and the
 * settlement of an attempt stopped for its budget (BUDGET_EXHAUSTED: usage recorded, given back
 * uncounted, the task held until raised; an ordinary failure when there is no budget at all).
 */
/** The supervisor's budget watch stopped the attempt: its 120 input tokens recorded, failed BUDGET_EXHAUSTED. */
function stopAtBudget(ctx: Ctx, taskId: number, leaseToken: string) {
  return ctx.store.tasks.failIfLeased({
    taskId,
    leaseToken,
    error: { code: "BUDGET_EXHAUSTED", message: "stopped at its budget", retryable: true },
    usage: { inputTokens: 120 },
    now: ctx.clock.now(),
    random: fixedRandom(0),
  });
}

export function budgetStopRules(get: GetCtx): void {
  it("budget stops: attemptBudget gives a task's policy limit and its goal's budget with their settled spend", async () => {
    const ctx = get();
    const root = await enqueueOne(ctx, { title: "goal" });
    const [child] = (await ctx.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "child", policy: { maxTokens: 100 } }], parentId: root, now: ctx.clock.now() })).ids;
    expect(await ctx.store.economics.attemptBudget({ taskId: root })).toEqual({ rootId: root, task: null, goal: null });
    await ctx.store.economics.setBudget({ scope: "goal", key: String(root), maxCostUsd: 2, now: ctx.clock.now() });
    const first = await claimOne(ctx);
    await ctx.store.tasks.completeIfLeased({ taskId: first.id, leaseToken: first.leaseToken, result: "ok", usage: { inputTokens: 30, costUsd: 0.5 }, now: ctx.clock.now() });
    expect(await ctx.store.economics.attemptBudget({ taskId: child! })).toEqual({
      rootId: root,
      task: { scope: "task", key: String(child), maxCostUsd: null, maxTokens: 100, spentUsd: 0, spentTokens: 0 },
      goal: { scope: "goal", key: String(root), maxCostUsd: 2, maxTokens: null, spentUsd: 0.5, spentTokens: 30 },
    });
  });

  it("budget stops: an attempt failed BUDGET_EXHAUSTED records its usage, goes back uncounted and is held until its budget is raised", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx, { policy: { maxTokens: 100 } });
    const task = await claimOne(ctx);
    const out = await stopAtBudget(ctx, id, task.leaseToken);
    expect(out).toMatchObject({ ok: true, outcome: "released", attempt: 1 });
    expect(await ctx.store.tasks.get({ taskId: id })).toMatchObject({ status: "pending", attempts: 0 });
    expect((await ctx.store.economics.usageOf({ taskId: id })).map((u) => [u.outcome, u.attempt, u.inputTokens])).toEqual([["budget_exhausted", 1, 120]]);
    const types = await eventTypes(ctx, id);
    expect(types).toContain("task:released");
    expect(types).not.toContain("task:retrying");
    expect((await ctx.store.why.explain({ taskId: id, now: ctx.clock.now() })).reasons.map((r) => r.code)).toContain("budget_exhausted");
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", now: ctx.clock.now() })).toEqual([]);
    await ctx.store.economics.raiseBudget({ scope: "task", key: String(id), addTokens: 1_000, now: ctx.clock.now() });
    expect(await claimOne(ctx)).toMatchObject({ id, attempt: 1 });
  });

  it("budget stops: roster why names the limit that is spent, and raising it as it says lets the task run again", async () => {
    const ctx = get();
    // A tokens-only task budget (its policy) and a dollars-only goal budget, each spent in turn.
    const id = await enqueueOne(ctx, { policy: { maxTokens: 100 } });
    const task = await claimOne(ctx);
    await stopAtBudget(ctx, id, task.leaseToken);
    const hint = async (): Promise<string> => {
      const held = (await ctx.store.why.explain({ taskId: id, now: ctx.clock.now() })).reasons.find((r) => r.code === "budget_exhausted");
      return held?.message ?? "(not held)";
    };
    const tokensHint = await hint();
    expect(tokensHint).toContain(`roster budget raise --task ${id} --tokens N`);
    expect(tokensHint).not.toContain("--usd");
    expect(tokensHint).toContain("120 of 100 tokens");
    // Following the hint (N = 1000) lifts the hold.
    await ctx.store.economics.raiseBudget({ scope: "task", key: String(id), addTokens: 1_000, now: ctx.clock.now() });
    expect(await hint()).toBe("(not held)");
    const again = await claimOne(ctx);
    expect(again).toMatchObject({ id, attempt: 1 });
    // Now its goal's dollars: the hint says --usd, for the goal.
    await ctx.store.economics.setBudget({ scope: "goal", key: String(id), maxCostUsd: 0.5, now: ctx.clock.now() });
    await ctx.store.tasks.failIfLeased({
      taskId: id,
      leaseToken: again.leaseToken,
      error: { code: "BUDGET_EXHAUSTED", message: "stopped at its budget", retryable: true },
      usage: { inputTokens: 10, costUsd: 0.75 },
      now: ctx.clock.now(),
      random: fixedRandom(0),
    });
    const usdHint = await hint();
    expect(usdHint).toContain(`roster budget raise --goal ${id} --usd N`);
    expect(usdHint).not.toContain("--tokens");
    await ctx.store.economics.raiseBudget({ scope: "goal", key: String(id), addCostUsd: 1, now: ctx.clock.now() });
    expect(await hint()).toBe("(not held)");
  });

  it("budget stops: BUDGET_EXHAUSTED on a task with no budget at all is an ordinary failure, counted", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const task = await claimOne(ctx);
    const out = await ctx.store.tasks.failIfLeased({
      taskId: id,
      leaseToken: task.leaseToken,
      error: { code: "BUDGET_EXHAUSTED", message: "an adapter said so", retryable: true },
      now: ctx.clock.now(),
      random: fixedRandom(0),
    });
    expect(out).toMatchObject({ ok: true, outcome: "retrying", attempt: 1 });
    expect(await status(ctx, id)).toBe("pending");
    expect(await eventTypes(ctx, id)).toContain("task:retrying");
  });
}
