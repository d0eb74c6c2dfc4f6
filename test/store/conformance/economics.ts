import { expect, it } from "vitest";
import { TEST_PERSONAS } from "../../helpers/personas.js";
import type { PersonaUpsert } from "../../../src/store/index.js";
import { budgetStopRules } from "./budget-stops.js";
import { claimOne, enqueueOne, eventTypes, expectRefused, fixedRandom, status, type Ctx, type GetCtx } from "./support.js";

const USAGE = { model: "claude-sonnet-4-5", inputTokens: 1_000, outputTokens: 500, cacheReadTokens: 2_000, cacheWriteTokens: 100, reasoningTokens: 50, turns: 3 };
/** claude-sonnet-4-5 list price of USAGE: (1000*3 + 500*15 + 2000*0.3 + 100*3.75) / 1e6. */
const USAGE_USD = 0.011475;

/** The test personas plus economics settings on some (docs/economics.md). */
async function syncEconomics(ctx: Ctx, extra: Record<string, Record<string, unknown>>): Promise<void> {
  const personas: PersonaUpsert[] = TEST_PERSONAS.map((p) => ({ ...p, config: { ...p.config, ...(extra[p.id] ?? {}) } }));
  await ctx.store.personas.sync({ personas, now: ctx.clock.now() });
}

async function completeWith(ctx: Ctx, persona = "worker", usage: object = USAGE, task?: { id: number; leaseToken: string }): Promise<number> {
  const t = task ?? (await claimOne(ctx, persona));
  const r = await ctx.store.tasks.completeIfLeased({ taskId: t.id, leaseToken: t.leaseToken, result: { text: "done", usage } as never, now: ctx.clock.now() });
  expect(r.ok).toBe(true);
  return t.id;
}

/** docs/ARCHITECTURE.md rule 15: usage is recorded with the attempt's outcome; budgets and limits are enforced in the claim. */
export function economicsRules(get: GetCtx): void {
  it("rule 15: a completion's result.usage is recorded on its attempt, priced from the model when no cost is reported", async () => {
    const ctx = get();
    await enqueueOne(ctx);
    const task = await claimOne(ctx);
    ctx.clock.advance(1_500);
    const id = await completeWith(ctx, "worker", USAGE, task);
    const [row, ...rest] = await ctx.store.economics.usageOf({ taskId: id });
    expect(rest).toEqual([]);
    expect(row).toMatchObject({ taskId: id, rootId: id, attempt: 1, agentId: "agent-a", persona: "worker", provider: "persona:worker", outcome: "completed" });
    expect(row).toMatchObject({ inputTokens: 1_000, outputTokens: 500, cacheReadTokens: 2_000, cacheWriteTokens: 100, reasoningTokens: 50, turns: 3, durationMs: 1_500 });
    expect(row!.costSource).toBe("priced");
    expect(row!.costUsd).toBeCloseTo(USAGE_USD, 9);
  });

  it("rule 15: a reported cost is kept as reported; an unknown model with none is recorded unpriced", async () => {
    const ctx = get();
    await enqueueOne(ctx);
    await enqueueOne(ctx);
    const a = await completeWith(ctx, "worker", { ...USAGE, costUsd: 0.5 });
    const b = await completeWith(ctx, "worker", { model: "my-local-model", inputTokens: 10 });
    expect((await ctx.store.economics.usageOf({ taskId: a }))[0]).toMatchObject({ costUsd: 0.5, costSource: "reported" });
    expect((await ctx.store.economics.usageOf({ taskId: b }))[0]).toMatchObject({ costUsd: null, costSource: "unpriced" });
    const total = await ctx.store.economics.total();
    expect(total).toMatchObject({ attempts: 2, unpriced: 1, costUsd: 0.5 });
  });

  it("rule 15: a user's price for a model replaces the default", async () => {
    const ctx = get();
    await ctx.store.economics.setPrice({ model: "claude-sonnet-4-5", price: { inputPerMTok: 1, outputPerMTok: 0, cacheReadPerMTok: 0, cacheWritePerMTok: 0 }, now: ctx.clock.now() });
    await enqueueOne(ctx);
    const id = await completeWith(ctx);
    expect((await ctx.store.economics.usageOf({ taskId: id }))[0]!.costUsd).toBeCloseTo(0.001, 9);
  });

  it("rule 15: a failed attempt's details.usage is recorded with its retry, in the same transaction", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const task = await claimOne(ctx);
    const r = await ctx.store.tasks.failIfLeased({
      taskId: id,
      leaseToken: task.leaseToken,
      error: { message: "server error", code: "ADAPTER_FAILED", details: { usage: USAGE } } as never,
      now: ctx.clock.now(),
      random: fixedRandom(0.5),
    });
    expect(r).toMatchObject({ ok: true, outcome: "retrying" });
    expect((await ctx.store.economics.usageOf({ taskId: id })).map((u) => u.outcome)).toEqual(["retrying"]);
  });

  it("rule 15: explicit usage that is not usage is refused and nothing is written", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const task = await claimOne(ctx);
    await expectRefused(
      ctx,
      () => ctx.store.tasks.completeIfLeased({ taskId: id, leaseToken: task.leaseToken, usage: { inputTokens: -3 }, now: ctx.clock.now() }),
      "VALIDATION",
      ["usage.inputTokens", "non-negative integer"],
      [id],
    );
  });

  it("rule 15: a lost lease records no usage", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const r = await ctx.store.tasks.completeIfLeased({ taskId: id, leaseToken: "not-the-lease", result: { usage: USAGE } as never, now: ctx.clock.now() });
    expect(r.ok).toBe(false);
    expect(await ctx.store.economics.usageOf({ taskId: id })).toEqual([]);
  });

  it("rule 15: cost adds up per goal (children of planners included), persona and model", async () => {
    const ctx = get();
    const root = await enqueueOne(ctx, { persona: "planner", title: "goal" });
    const planner = await claimOne(ctx, "planner");
    await ctx.store.tasks.completeIfLeased({
      taskId: root,
      leaseToken: planner.leaseToken,
      result: { usage: { ...USAGE, costUsd: 1 } } as never,
      children: [{ persona: "worker", title: "child 1" }, { persona: "worker", title: "child 2" }],
      now: ctx.clock.now(),
    });
    await completeWith(ctx, "worker", { ...USAGE, costUsd: 0.25 });
    await completeWith(ctx, "worker", { ...USAGE, costUsd: 0.25 });
    const byGoal = await ctx.store.economics.cost({ by: "goal" });
    expect(byGoal).toEqual([expect.objectContaining({ key: String(root), attempts: 3, costUsd: 1.5, inputTokens: 3_000 })]);
    const byPersona = await ctx.store.economics.cost({ by: "persona" });
    expect(byPersona.map((r) => [r.key, r.costUsd])).toEqual([["planner", 1], ["worker", 0.5]]);
    expect((await ctx.store.economics.cost({ by: "model" })).map((r) => r.key)).toEqual(["claude-sonnet-4-5"]);
  });

  it("rule 15: one settle batch records every attempt's usage and leaves each running total what one settlement after another would", async () => {
    const ctx = get();
    await ctx.store.economics.setBudget({ scope: "global", key: "", window: "day", maxCostUsd: 1_000, now: ctx.clock.now() });
    await ctx.store.economics.setBudget({ scope: "persona", key: "worker", maxCostUsd: 1_000, now: ctx.clock.now() });
    // Costs whose floating-point sum depends on the order of addition.
    const costs = [0.1, 0.2, 0.3, 0.7, 0.1, 0.6];
    for (const _ of costs) await enqueueOne(ctx);
    await completeWith(ctx, "worker", { ...USAGE, costUsd: costs[0] });
    const claimed = await ctx.store.tasks.claim({ persona: "worker", agentId: "a", limit: costs.length, now: ctx.clock.now() });
    expect(claimed).toHaveLength(costs.length - 1);
    const results = await ctx.store.tasks.settle({
      settlements: claimed.map((t, i) => ({ kind: "complete" as const, taskId: t.id, leaseToken: t.leaseToken, result: { usage: { ...USAGE, costUsd: costs[i + 1] } } as never })),
      now: ctx.clock.now(),
    });
    expect(results.every((r) => r.ok && r.outcome === "completed")).toBe(true);
    let sum = 0;
    for (const c of costs) sum += c;
    const budgets = await ctx.store.economics.budgets({ now: ctx.clock.now() });
    expect(budgets.map((b) => [b.scope, b.spentUsd, b.spentTokens])).toEqual([
      ["global", sum, 3_600 * costs.length],
      ["persona", sum, 3_600 * costs.length],
    ]);
    for (const [i, t] of claimed.entries()) {
      expect(await ctx.store.economics.usageOf({ taskId: t.id })).toEqual([expect.objectContaining({ attempt: 1, outcome: "completed", costUsd: costs[i + 1], costSource: "reported", inputTokens: 1_000 })]);
    }
    expect((await ctx.store.economics.total()).attempts).toBe(costs.length);
  });

  it("budgets: a task whose own policy.maxCostUsd is spent is not claimed; raising it lets it run again", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx, { policy: { maxCostUsd: 0.4 } });
    const task = await claimOne(ctx);
    await ctx.store.tasks.failIfLeased({
      taskId: id,
      leaseToken: task.leaseToken,
      error: { message: "try again", details: { usage: { ...USAGE, costUsd: 0.5 } } } as never,
      now: ctx.clock.now(),
      random: fixedRandom(0),
    });
    ctx.clock.advance(60_000);
    expect(await status(ctx, id)).toBe("pending");
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", now: ctx.clock.now() })).toEqual([]);
    const budgets = await ctx.store.economics.budgets({ now: ctx.clock.now() });
    expect(budgets).toEqual([expect.objectContaining({ scope: "task", key: String(id), source: "policy", exhausted: true, spentUsd: 0.5 })]);
    await ctx.store.economics.raiseBudget({ scope: "task", key: String(id), addCostUsd: 1, now: ctx.clock.now() });
    expect((await claimOne(ctx)).id).toBe(id);
  });

  it("budgets: a goal budget holds its whole subtree, other goals go on, and the overshoot is what was in flight", async () => {
    const ctx = get();
    const goal = await enqueueOne(ctx, { title: "goal" });
    const other = await enqueueOne(ctx, { title: "another goal" });
    await ctx.store.economics.setBudget({ scope: "goal", key: String(goal), maxCostUsd: 1, now: ctx.clock.now() });
    const g = await claimOne(ctx);
    expect(g.id).toBe(goal);
    const r = await ctx.store.tasks.completeIfLeased({
      taskId: goal,
      leaseToken: g.leaseToken,
      result: { usage: { costUsd: 0.6 } } as never,
      children: [{ persona: "worker", title: "c1" }, { persona: "worker", title: "c2" }, { persona: "worker", title: "c3" }],
      now: ctx.clock.now(),
    });
    const childIds = r.ok ? r.childIds : [];
    // Two children run at once: the in-flight rule lets both finish and count.
    const claimed = await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 2, now: ctx.clock.now() });
    expect(claimed.map((t) => t.id)).toEqual([other, childIds[0]]);
    const c2 = (await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-b", now: ctx.clock.now() }))[0]!;
    await completeWith(ctx, "worker", { costUsd: 0.5 }, claimed[1]!);
    // Spent 1.1 >= 1: held. c2 was in flight and still settles and counts.
    await completeWith(ctx, "worker", { costUsd: 0.5 }, c2);
    const budget = (await ctx.store.economics.budgets({ now: ctx.clock.now() })).find((b) => b.scope === "goal")!;
    expect(budget).toMatchObject({ exhausted: true, spentUsd: 1.6 });
    // Overshoot 0.6 = the spend of the attempt in flight when the limit was crossed.
    expect(budget.spentUsd - budget.maxCostUsd!).toBeCloseTo(0.6, 9);
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", now: ctx.clock.now() })).toEqual([]);
    expect(await status(ctx, childIds[2]!)).toBe("pending");
    await ctx.store.economics.raiseBudget({ scope: "goal", key: String(goal), addCostUsd: 5, now: ctx.clock.now() });
    expect((await claimOne(ctx)).id).toBe(childIds[2]);
  });

  it("budgets: a persona's daily budget stops its claims until the next UTC day; other personas go on", async () => {
    const ctx = get();
    await ctx.store.economics.setBudget({ scope: "persona", key: "worker", window: "day", maxTokens: 1_000, now: ctx.clock.now() });
    await enqueueOne(ctx);
    await enqueueOne(ctx);
    await enqueueOne(ctx, { persona: "reviewer" });
    await completeWith(ctx, "worker", { inputTokens: 1_000 });
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", now: ctx.clock.now() })).toEqual([]);
    const gates = await ctx.store.economics.gates({ persona: "worker", now: ctx.clock.now() });
    expect(gates.reasons.map((r) => r.code)).toEqual(["BUDGET_EXHAUSTED"]);
    const nextDay = (Math.floor(ctx.clock.now() / 86_400_000) + 1) * 86_400_000;
    expect(gates.until).toBe(nextDay);
    await claimOne(ctx, "reviewer");
    ctx.clock.advance(nextDay - ctx.clock.now());
    await claimOne(ctx);
  });

  it("budgets: a budget with no limit or a bad scope is refused", async () => {
    const ctx = get();
    await expectRefused(ctx, () => ctx.store.economics.setBudget({ scope: "goal", key: "1", now: ctx.clock.now() }), "VALIDATION", ["needs a limit"]);
    await expectRefused(ctx, () => ctx.store.economics.setBudget({ scope: "goal", key: "x", maxCostUsd: 1, now: ctx.clock.now() }), "VALIDATION", ["goal", "task id"]);
    await expectRefused(ctx, () => ctx.store.economics.setBudget({ scope: "global", key: "", maxCostUsd: -1, now: ctx.clock.now() }), "VALIDATION", ["maxCostUsd"]);
  });

  it("provider limits: a usage limit releases the attempt uncounted and pauses every persona on the account until its reset", async () => {
    const ctx = get();
    await syncEconomics(ctx, { worker: { provider: "anthropic-main" }, reviewer: { provider: "anthropic-main" } });
    const id = await enqueueOne(ctx);
    await enqueueOne(ctx, { persona: "reviewer" });
    const task = await claimOne(ctx);
    const resetAt = ctx.clock.now() + 5_000;
    const r = await ctx.store.tasks.failIfLeased({
      taskId: id,
      leaseToken: task.leaseToken,
      error: { message: "usage limit", retryable: true, details: { failure: "usage-limit", resetAt, usage: { inputTokens: 5 } } } as never,
      now: ctx.clock.now(),
    });
    expect(r).toMatchObject({ ok: true, runAt: resetAt });
    const detail = await ctx.store.tasks.get({ taskId: id });
    expect(detail).toMatchObject({ status: "pending", attempts: 0, runAt: resetAt });
    expect(await eventTypes(ctx, id)).toContain("task:released");
    expect((await ctx.store.economics.usageOf({ taskId: id }))[0]!.outcome).toBe("released");
    expect(await ctx.store.tasks.claim({ persona: "reviewer", agentId: "agent-a", now: ctx.clock.now() })).toEqual([]);
    expect((await ctx.store.economics.gates({ persona: "reviewer", now: ctx.clock.now() })).reasons).toEqual([
      { code: "PROVIDER_PAUSED", provider: "anthropic-main", until: resetAt, reason: "usage-limit" },
    ]);
    ctx.clock.advance(5_000);
    await claimOne(ctx, "reviewer");
    expect((await claimOne(ctx)).attempt).toBe(1);
  });

  it("provider limits: the released attempt's error is the task's last error, so the next claim continues it (its session, its kept home); a plain release keeps it", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const task = await claimOne(ctx);
    const details = { failure: "rate-limit", retryAfterMs: 1_000, sessionId: "s-41", home: "/tmp/roster-home-x" };
    const r = await ctx.store.tasks.failIfLeased({ taskId: id, leaseToken: task.leaseToken, error: { name: "RosterError", code: "ADAPTER_FAILED", message: "429", retryable: true, details } as never, now: ctx.clock.now() });
    expect(r).toMatchObject({ ok: true, outcome: "released" });
    expect(await ctx.store.tasks.get({ taskId: id })).toMatchObject({ status: "pending", attempts: 0, error: { code: "ADAPTER_FAILED", details } });
    ctx.clock.advance(1_000);
    const again = await claimOne(ctx);
    expect(again.attempt).toBe(1);
    expect(again.previous).toEqual({ code: "ADAPTER_FAILED", message: "429", retryable: true, details });
    // Given back for another reason (a shutdown): what the next attempt continues stays.
    await ctx.store.tasks.releaseIfLeased({ taskId: id, leaseToken: again.leaseToken, reason: "supervisor shutting down", now: ctx.clock.now() });
    expect((await claimOne(ctx)).previous).toEqual({ code: "ADAPTER_FAILED", message: "429", retryable: true, details });
  });

  it("provider limits: roster provider resume runs the tasks the pause held back at once, and no task delayed for another reason", async () => {
    const ctx = get();
    const limited = await enqueueOne(ctx);
    const delayed = (await ctx.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "on purpose", delayMs: 30_000 }], now: ctx.clock.now() })).ids[0]!;
    const task = await claimOne(ctx);
    expect(task.id).toBe(limited);
    const r = await ctx.store.tasks.failIfLeased({ taskId: limited, leaseToken: task.leaseToken, error: { name: "RosterError", code: "ADAPTER_FAILED", message: "429", retryable: true, details: { failure: "rate-limit", retryAfterMs: 3_600_000 } } as never, now: ctx.clock.now() });
    expect(r).toMatchObject({ ok: true, outcome: "released", runAt: ctx.clock.now() + 3_600_000 });
    ctx.clock.advance(1_000);
    expect(await ctx.store.economics.resumeProvider({ provider: "persona:worker", now: ctx.clock.now() })).toBe(true);
    // Due now, not in an hour: the pause it waited for is over.
    const again = await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 5, now: ctx.clock.now() });
    expect(again.map((t) => t.id)).toEqual([limited]);
    expect(await ctx.store.tasks.get({ taskId: delayed })).toMatchObject({ status: "pending", runAt: ctx.clock.now() + 29_000 });
  });

  it("provider limits: a rate limit without retryAfterMs pauses for the default backoff; with providerAutoResume false until resumed", async () => {
    const ctx = get();
    await syncEconomics(ctx, { worker: { providerAutoResume: false } });
    const id = await enqueueOne(ctx);
    const task = await claimOne(ctx);
    await ctx.store.tasks.failIfLeased({ taskId: id, leaseToken: task.leaseToken, error: { message: "429", details: { failure: "rate-limit" } } as never, now: ctx.clock.now() });
    ctx.clock.advance(24 * 3_600_000);
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", now: ctx.clock.now() })).toEqual([]);
    expect((await ctx.store.economics.pauses({ now: ctx.clock.now() }))[0]).toMatchObject({ provider: "persona:worker", until: null, reason: "rate-limit" });
    expect(await ctx.store.economics.resumeProvider({ provider: "persona:worker", now: ctx.clock.now() })).toBe(true);
    await claimOne(ctx);
  });

  it("a persona's own fault (its CLI not found) fails no task: the attempt is given back uncounted with its error, and the persona's breaker opens without a breaker setting; its probe closes it once fixed", async () => {
    const ctx = get();
    const ids = [await enqueueOne(ctx), await enqueueOne(ctx)];
    const task = await claimOne(ctx);
    const error = { name: "RosterError", code: "ADAPTER_NOT_FOUND", message: 'persona "worker" (/p/worker.md): its command "./bin/claude" cannot be found', retryable: false, details: { failure: "persona", persona: "worker", command: "./bin/claude" } };
    expect(await ctx.store.tasks.failIfLeased({ taskId: task.id, leaseToken: task.leaseToken, error: error as never, now: ctx.clock.now() })).toMatchObject({ ok: true, outcome: "released" });
    expect(await ctx.store.tasks.get({ taskId: task.id })).toMatchObject({ status: "pending", attempts: 0, error: { code: "ADAPTER_NOT_FOUND", details: { failure: "persona" } } });
    expect((await ctx.store.economics.breakers())[0]).toMatchObject({ persona: "worker", state: "open", openUntil: ctx.clock.now() + 60_000 });
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", now: ctx.clock.now() })).toEqual([]);
    expect((await ctx.store.economics.gates({ persona: "worker", now: ctx.clock.now() })).reasons).toMatchObject([{ code: "BREAKER_OPEN", persona: "worker" }]);
    ctx.clock.advance(60_000);
    const probe = await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 2, now: ctx.clock.now() });
    expect(probe).toHaveLength(1);
    await completeWith(ctx, "worker", {}, probe[0]!);
    expect(await ctx.store.economics.breakers()).toEqual([]);
    expect(await status(ctx, ids[0]!)).not.toBe("failed");
    expect(await status(ctx, ids[1]!)).not.toBe("failed");
  });

  it("breaker: N consecutive failed attempts open it; it stays shut for a cooldown that grows; one probe closes it", async () => {
    const ctx = get();
    await syncEconomics(ctx, { worker: { breaker: { failures: 2, cooldownMs: 10_000 }, retry: { maxAttempts: 100, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 } } });
    const ids = [await enqueueOne(ctx), await enqueueOne(ctx), await enqueueOne(ctx)];
    const failOnce = async () => {
      const t = await claimOne(ctx);
      await ctx.store.tasks.failIfLeased({ taskId: t.id, leaseToken: t.leaseToken, error: { message: "boom" }, now: ctx.clock.now(), random: fixedRandom(0) });
      return t;
    };
    await failOnce();
    await failOnce();
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", now: ctx.clock.now() })).toEqual([]);
    expect((await ctx.store.economics.breakers())[0]).toMatchObject({ persona: "worker", state: "open", openUntil: ctx.clock.now() + 10_000 });
    ctx.clock.advance(10_000);
    // Half-open: one probe only, however many are asked for.
    const probe = await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 3, now: ctx.clock.now() });
    expect(probe).toHaveLength(1);
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-b", now: ctx.clock.now() })).toEqual([]);
    await ctx.store.tasks.failIfLeased({ taskId: probe[0]!.id, leaseToken: probe[0]!.leaseToken, error: { message: "boom" }, now: ctx.clock.now(), random: fixedRandom(0) });
    // The probe failed: open again for twice as long.
    expect((await ctx.store.economics.breakers())[0]).toMatchObject({ state: "open", openUntil: ctx.clock.now() + 20_000 });
    ctx.clock.advance(20_000);
    const second = (await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 3, now: ctx.clock.now() }))[0]!;
    await completeWith(ctx, "worker", {}, second);
    expect(await ctx.store.economics.breakers()).toEqual([]);
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 3, now: ctx.clock.now() })).toHaveLength(2);
    expect(ids).toHaveLength(3);
  });

  it("breaker: a reset closes it at once", async () => {
    const ctx = get();
    await syncEconomics(ctx, { worker: { breaker: { failures: 1, cooldownMs: 3_600_000 } } });
    await enqueueOne(ctx);
    const t = await claimOne(ctx);
    await ctx.store.tasks.failIfLeased({ taskId: t.id, leaseToken: t.leaseToken, error: { message: "boom" }, now: ctx.clock.now(), random: fixedRandom(0) });
    ctx.clock.advance(5_000);
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", now: ctx.clock.now() })).toEqual([]);
    expect(await ctx.store.economics.resetBreaker({ persona: "worker", now: ctx.clock.now() })).toBe(true);
    await claimOne(ctx);
  });

  it("rate limits: at most N starts per fixed window, shared by every claimer and by personas naming the same key", async () => {
    const ctx = get();
    await syncEconomics(ctx, { worker: { rateLimit: { starts: 3, perMs: 1_000, key: "acct" } }, reviewer: { rateLimit: { starts: 3, perMs: 1_000, key: "acct" } } });
    for (let i = 0; i < 5; i++) await enqueueOne(ctx);
    await enqueueOne(ctx, { persona: "reviewer" });
    ctx.clock.advance(1_000 - (ctx.clock.now() % 1_000));
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 2, now: ctx.clock.now() })).toHaveLength(2);
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-b", limit: 5, now: ctx.clock.now() })).toHaveLength(1);
    expect(await ctx.store.tasks.claim({ persona: "reviewer", agentId: "agent-b", now: ctx.clock.now() })).toEqual([]);
    const gates = await ctx.store.economics.gates({ persona: "worker", now: ctx.clock.now() });
    expect(gates.reasons[0]).toMatchObject({ code: "RATE_LIMITED", until: ctx.clock.now() + 1_000 });
    const waiting = (await ctx.store.tasks.list({ persona: "worker", status: "pending", limit: 1 }))[0]!;
    const why = await ctx.store.why.explain({ taskId: waiting.id, now: ctx.clock.now() });
    expect(why.reasons.find((r) => r.code === "rate_limited")).toMatchObject({ data: { starts: 3, perMs: 1_000, until: ctx.clock.now() + 1_000 } });
    expect(why.reasons.map((r) => r.code)).not.toContain("ready");
    ctx.clock.advance(1_000);
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 5, now: ctx.clock.now() })).toHaveLength(2);
  });
  it("concurrency keys: tasks sharing a key run one at a time (limit 1), others of the persona pass them by, across claimers", async () => {
    const ctx = get();
    const [a, b, c] = [await enqueueOne(ctx, { policy: { concurrencyKey: "repo-x" } }), await enqueueOne(ctx, { policy: { concurrencyKey: "repo-x" } }), await enqueueOne(ctx, { policy: { concurrencyKey: "repo-x" } })];
    const free = await enqueueOne(ctx);
    // One statement asked for four: one of the key, and the task without a key.
    const first = await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 4, now: ctx.clock.now() });
    expect(first.map((t) => t.id)).toEqual([a, free]);
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-b", limit: 4, now: ctx.clock.now() })).toEqual([]);
    expect(await status(ctx, b)).toBe("pending");
    expect((await ctx.store.tasks.get({ taskId: b })).attempts).toBe(0);
    const why = await ctx.store.why.explain({ taskId: b, now: ctx.clock.now() });
    expect(why.reasons.find((r) => r.code === "concurrency_key_full")).toMatchObject({ data: { key: "repo-x", running: 1, limit: 1, holders: [a] } });
    await completeWith(ctx, "worker", {}, first[0]!);
    await completeWith(ctx, "worker", {}, first[1]!);
    expect((await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-b", limit: 4, now: ctx.clock.now() })).map((t) => t.id)).toEqual([b]);
    // A lease that expires frees its key as well.
    ctx.clock.advance(60_000);
    await ctx.store.maintenance.reapExpired({ now: ctx.clock.now(), random: fixedRandom(0) });
    ctx.clock.advance(60_000);
    const next = await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 4, now: ctx.clock.now() });
    expect(next).toHaveLength(1);
    expect([b, c]).toContain(next[0]!.id);
  });

  it("concurrency keys: concurrencyLimit N lets N run at once; a cancel frees a place", async () => {
    const ctx = get();
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) ids.push(await enqueueOne(ctx, { policy: { concurrencyKey: "pair", concurrencyLimit: 2 } }));
    const got = await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 4, now: ctx.clock.now() });
    expect(got.map((t) => t.id)).toEqual(ids.slice(0, 2));
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-b", limit: 4, now: ctx.clock.now() })).toEqual([]);
    await ctx.store.tasks.cancel({ taskId: ids[0]!, now: ctx.clock.now() });
    expect((await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-b", limit: 4, now: ctx.clock.now() })).map((t) => t.id)).toEqual([ids[2]]);
  });

  it("concurrency keys: a limit below 1 or an empty key is refused and nothing is written", async () => {
    const ctx = get();
    await expectRefused(ctx, () => enqueueOne(ctx, { policy: { concurrencyKey: "k", concurrencyLimit: 0 } }), "VALIDATION", ["concurrencyLimit"]);
    await expectRefused(ctx, () => enqueueOne(ctx, { policy: { concurrencyKey: "" } }), "VALIDATION", ["concurrencyKey"]);
  });

  it("breaker (failure rate): failures over a window open it once the window holds minAttempts", async () => {
    const ctx = get();
    await syncEconomics(ctx, {
      worker: { breaker: { failureRate: 0.5, windowMs: 60_000, minAttempts: 4, cooldownMs: 10_000 }, retry: { maxAttempts: 100, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 } },
    });
    ctx.clock.advance(60_000 - (ctx.clock.now() % 60_000));
    for (let i = 0; i < 6; i++) await enqueueOne(ctx);
    const fail = async () => {
      const t = await claimOne(ctx);
      await ctx.store.tasks.failIfLeased({ taskId: t.id, leaseToken: t.leaseToken, error: { message: "boom" }, now: ctx.clock.now(), random: fixedRandom(0) });
    };
    await completeWith(ctx);
    await fail();
    await completeWith(ctx);
    // 3 attempts, 1 failure: under minAttempts, and a success in between (no consecutive rule here).
    expect((await ctx.store.economics.breakers()).filter((b) => b.state !== "closed")).toEqual([]);
    await fail();
    // 4 attempts, 2 failed: 0.5 reached.
    expect((await ctx.store.economics.breakers())[0]).toMatchObject({ persona: "worker", state: "open", openUntil: ctx.clock.now() + 10_000 });
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", now: ctx.clock.now() })).toEqual([]);
    ctx.clock.advance(10_000);
    await completeWith(ctx);
    expect(await ctx.store.economics.breakers()).toEqual([]);
    // The window that opened it was paid for: one failure now does not reopen it.
    await fail();
    expect((await ctx.store.economics.breakers())[0]).toMatchObject({ state: "closed" });
  });
  budgetStopRules(get);
}
