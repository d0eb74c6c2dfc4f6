import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMetrics } from "../../src/metrics/index.js";
import type { CostRow, PersonaUpsert, UsageRecord } from "../../src/store/index.js";
import { openTestStore, type TestStore } from "../helpers/store.js";
import { TEST_PERSONAS } from "../helpers/personas.js";
import { roster, rosterJson, rosterOk, tableCounts } from "../cli/helpers.js";
import { call, callFailing, connectInProcess } from "../mcp/helpers.js";
import { parseExposition, valueOf } from "../metrics/helpers.js";

/**
 * Seeing and moving the economics (issue 16) from outside the store: `roster cost`,
 * usage per attempt in `roster show`, totals and gates in `roster status`, gate
 * reasons in `roster why`, the commands that move gates by hand (each leaving an
 * audit event), Prometheus counters fed by usage:recorded, and MCP's usage argument
 * and get_progress cost. All against one real database file and the built CLI.
 */
const SONNET = { model: "claude-sonnet-4-5", inputTokens: 1_000, outputTokens: 500, cacheReadTokens: 2_000, cacheWriteTokens: 100, reasoningTokens: 50, turns: 3 };
/** claude-sonnet-4-5 list price of SONNET. */
const SONNET_USD = 0.011475;

/** worker: breaker after 2 failures (10 min cooldown); reviewer: on provider account "acme". */
const PERSONAS: PersonaUpsert[] = TEST_PERSONAS.map((p) => ({
  ...p,
  config: {
    ...p.config,
    ...(p.id === "worker" ? { breaker: { failures: 2, cooldownMs: 600_000 } } : {}),
    ...(p.id === "reviewer" ? { provider: "acme" } : {}),
  },
}));

let t: TestStore;
/** Task ids: goal (worker, completed with SONNET) → child (reviewer, completed at a reported $0.5); flaky (worker, failed twice); limited (reviewer, rate-limited); waiting (worker). */
const ids = { goal: 0, child: 0, flaky: 0, limited: 0, waiting: 0 };

async function claim(persona: string, agentId = "agent-a") {
  const [task] = await t.store.tasks.claim({ persona, agentId, limit: 1, now: t.clock.now() });
  expect(task, `a ${persona} task to claim`).toBeDefined();
  return task!;
}

beforeAll(async () => {
  t = await openTestStore({ start: Date.now() });
  await t.store.personas.sync({ personas: PERSONAS, now: t.clock.now() });
  const now = () => t.clock.now();
  ids.goal = (await t.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "the goal" }], now: now() })).ids[0]!;
  const goal = await claim("worker");
  t.clock.advance(2_000);
  const done = await t.store.tasks.completeIfLeased({
    taskId: goal.id,
    leaseToken: goal.leaseToken,
    result: { text: "planned", usage: SONNET } as never,
    children: [{ persona: "reviewer", title: "check it" }],
    now: now(),
  });
  expect(done.ok).toBe(true);
  const child = await claim("reviewer");
  ids.child = child.id;
  await t.store.tasks.completeIfLeased({ taskId: child.id, leaseToken: child.leaseToken, usage: { model: "gpt-5", inputTokens: 10_000, outputTokens: 2_000, costUsd: 0.5 }, now: now() });

  ids.flaky = (await t.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "flaky" }], now: now() })).ids[0]!;
  for (let i = 0; i < 2; i++) {
    const f = await claim("worker");
    await t.store.tasks.failIfLeased({ taskId: f.id, leaseToken: f.leaseToken, error: { message: "boom", code: "ADAPTER_FAILED", details: { usage: { model: "claude-sonnet-4-5", inputTokens: 100 } } } as never, now: now(), random: () => 0 });
    t.clock.advance(5_000); // past the backoff
  }
  ids.limited = (await t.store.tasks.enqueue({ tasks: [{ persona: "reviewer", title: "limited" }], now: now() })).ids[0]!;
  const l = await claim("reviewer");
  await t.store.tasks.failIfLeased({ taskId: l.id, leaseToken: l.leaseToken, error: { message: "429", code: "ADAPTER_FAILED", details: { failure: "rate-limit", retryAfterMs: 3_600_000 } } as never, now: now() });
  ids.waiting = (await t.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "waits" }], now: now() })).ids[0]!;
  // A supervisor row, so `roster why` speaks of the gates rather than of no supervisor.
  await t.store.agents.register({ id: "sup-1", name: "sup", kind: "supervisor", heartbeatTimeoutMs: 3_600_000, now: now() });
});

afterAll(async () => t.close());

const db = () => ["--db", t.path];

describe("roster cost", () => {
  it("groups by persona by default, largest cost first, with a total that adds up (JSON)", async () => {
    const out = await rosterJson<{ by: string; rows: CostRow[]; total: CostRow }>(["cost", ...db()]);
    expect(out.by).toBe("persona");
    expect(out.rows.map((r) => r.key)).toEqual(["reviewer", "worker"]);
    const worker = out.rows.find((r) => r.key === "worker")!;
    expect(worker.attempts).toBe(3);
    expect(worker.inputTokens).toBe(1_200);
    expect(worker.costUsd).toBeCloseTo(SONNET_USD + 2 * 100 * 3e-6, 6);
    expect(out.total.attempts).toBe(out.rows.reduce((n, r) => n + r.attempts, 0));
    expect(out.total.costUsd).toBeCloseTo(out.rows.reduce((n, r) => n + r.costUsd, 0), 6);
  });

  it("groups by goal (the root task's subtree), model, agent and day", async () => {
    const byGoal = await rosterJson<{ rows: CostRow[] }>(["cost", "--by", "goal", ...db()]);
    const goal = byGoal.rows.find((r) => r.key === String(ids.goal))!;
    expect(goal.attempts).toBe(2); // the goal and its reviewer child
    expect(goal.costUsd).toBeCloseTo(SONNET_USD + 0.5, 6);
    const byModel = await rosterJson<{ rows: CostRow[] }>(["cost", "--by", "model", ...db()]);
    expect(byModel.rows.map((r) => r.key).sort()).toEqual(["claude-sonnet-4-5", "gpt-5"]);
    const byAgent = await rosterJson<{ rows: CostRow[] }>(["cost", "--by", "agent", ...db()]);
    expect(byAgent.rows.map((r) => r.key)).toEqual(["agent-a"]);
    const byDay = await rosterJson<{ rows: CostRow[] }>(["cost", "--by", "day", ...db()]);
    expect(byDay.rows.map((r) => r.key)).toEqual([new Date(t.clock.now()).toISOString().slice(0, 10)]);
    const oneGoal = await rosterJson<{ total: CostRow; goal: number }>(["cost", "--goal", String(ids.goal), ...db()]);
    expect(oneGoal.total.attempts).toBe(2);
  });

  it("prints a table with a header, a row per group and a total row", async () => {
    const text = await rosterOk(["cost", "--by", "model", ...db()]);
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^MODEL +ATTEMPTS +INPUT +OUTPUT +CACHE READ +CACHE WRITE +TOKENS +USD$/);
    expect(lines[1]).toMatch(/^gpt-5 +1 +10,000 +2,000 +0 +0 +12,000 +\$0\.5000$/);
    expect(lines.at(-1)).toMatch(/^total +4 +11,200 +2,500 +2,000 +100 +15,800 +\$0\.51\d\d$/);
  });
});

describe("roster show and roster status", () => {
  it("show lists usage per attempt, in text and JSON", async () => {
    const json = await rosterJson<{ usage: UsageRecord[] }>(["show", String(ids.flaky), ...db()]);
    expect(json.usage.map((u) => [u.attempt, u.outcome, u.inputTokens])).toEqual([
      [1, "retrying", 100],
      [2, "retrying", 100],
    ]);
    const text = await rosterOk(["show", String(ids.goal), ...db()]);
    expect(text).toMatch(/usage per attempt \(\$0\.0115 in all\)\nATTEMPT +OUTCOME +MODEL .+\n1 +completed +claude-sonnet-4-5 +1,000 +500 +2,000 +100 +3 +2s +\$0\.0115 \(priced\)/);
  });

  it("status --json carries the totals and the closed gates; its text says what was spent", async () => {
    const json = await rosterJson<{ cost: { total: CostRow; today: CostRow }; gates: { pauses: Array<{ provider: string }>; breakers: Array<{ persona: string; state: string }> } }>(["status", ...db()]);
    expect(json.cost.total.attempts).toBe(4); // the rate-limited attempt reported no usage
    expect(json.cost.total.costUsd).toBeCloseTo(SONNET_USD + 0.5 + 2 * 100 * 3e-6, 6);
    expect(json.gates.pauses.map((p) => p.provider)).toEqual(["acme"]);
    expect(json.gates.breakers.map((b) => [b.persona, b.state])).toEqual([["worker", "open"]]);
    const text = await rosterOk(["status", ...db()]);
    expect(text).toMatch(/^spent \$0\.51\d\d \(15,800 tokens, 4 attempts\); today \(UTC\) /m);
    expect(text).toMatch(/^ {2}provider acme paused \(rate-limit\) until /m);
    expect(text).toMatch(/^ {2}breaker worker open until .* after 2 failures$/m);
  });
});

describe("roster why names the gates with when they lift", () => {
  it("a worker task behind an open breaker: breaker_open until the cooldown ends", async () => {
    const report = await rosterJson<{ reasons: Array<{ code: string; data: { until: number } }> }>(["why", String(ids.waiting), ...db()]);
    const breaker = report.reasons.find((r) => r.code === "breaker_open");
    expect(breaker, JSON.stringify(report.reasons)).toBeDefined();
    expect(breaker!.data.until).toBeGreaterThan(t.clock.now());
    expect(report.reasons.map((r) => r.code)).not.toContain("ready");
  });

  it("a reviewer task on a paused provider: provider_paused until the retry-after", async () => {
    const report = await rosterJson<{ reasons: Array<{ code: string; data: { provider: string; until: number } }> }>(["why", String(ids.limited), ...db()]);
    const paused = report.reasons.find((r) => r.code === "provider_paused")!;
    expect(paused.data.provider).toBe("acme");
    expect(paused.data.until).toBeGreaterThan(t.clock.now() + 3_000_000);
    expect(await rosterOk(["why", String(ids.limited), ...db()])).toMatch(/provider_paused: provider "acme" is paused \(rate-limit\) until \S+ \(in \d+ s\)/);
  });

  it("a task whose own budget is spent: budget_exhausted, lifted by budget raise; each change is on the task's trail", async () => {
    await rosterOk(["budget", "set", "--task", String(ids.flaky), "--usd", "0.0001", ...db()]);
    const held = await rosterJson<{ reasons: Array<{ code: string; data: { scope: string } }> }>(["why", String(ids.flaky), ...db()]);
    expect(held.reasons.find((r) => r.code === "budget_exhausted")?.data.scope).toBe("task");
    const raised = await rosterJson<{ exhausted: boolean; maxCostUsd: number }>(["budget", "raise", "--task", String(ids.flaky), "--usd", "1", ...db()]);
    expect(raised).toMatchObject({ exhausted: false });
    expect(raised.maxCostUsd).toBeCloseTo(1.0001, 9);
    const after = await rosterJson<{ reasons: Array<{ code: string }> }>(["why", String(ids.flaky), ...db()]);
    expect(after.reasons.map((r) => r.code)).not.toContain("budget_exhausted");
    const events = await rosterJson<Array<{ type: string; agentId: string | null }>>(["events", String(ids.flaky), ...db()]);
    expect(events.filter((e) => e.type.startsWith("budget:")).map((e) => [e.type, e.agentId])).toEqual([
      ["budget:set", "cli"],
      ["budget:raised", "cli"],
    ]);
  });
});

describe("the commands that move gates by hand", () => {
  const auditRows = (type: string) => {
    const raw = new Database(t.path, { readonly: true });
    try {
      return raw.prepare("SELECT task_id, agent_id, data FROM task_events WHERE type = ? ORDER BY id").all(type) as Array<{ task_id: number | null; agent_id: string; data: string }>;
    } finally {
      raw.close();
    }
  };

  it("budget set / ls / rm for a persona per day, with audit events", async () => {
    const set = await rosterOk(["budget", "set", "--persona", "reviewer", "--usd", "0.25", "--per", "day", ...db()]);
    expect(set).toMatch(/^budget set: persona reviewer per day: \$0\.5000 of \$0\.2500 \(exhausted: its claims are held\)$/m);
    const ls = await rosterJson<Array<{ scope: string; key: string; window: string; exhausted: boolean }>>(["budget", "ls", ...db()]);
    expect(ls.find((b) => b.scope === "persona")).toMatchObject({ key: "reviewer", window: "day", exhausted: true });
    expect(await rosterOk(["budget", "ls", ...db()])).toMatch(/^persona +reviewer +day +\$0\.5000 +\$0\.2500 .* exhausted$/m);
    await rosterOk(["budget", "rm", "--persona", "reviewer", ...db()]);
    expect((await rosterJson<Array<{ scope: string }>>(["budget", "ls", ...db()])).map((b) => b.scope)).not.toContain("persona");
    expect(auditRows("budget:set").filter((r) => r.task_id === null).map((r) => JSON.parse(r.data))).toEqual([{ scope: "persona", key: "reviewer", window: "day", maxCostUsd: 0.25, maxTokens: null }]);
    expect(auditRows("budget:removed").map((r) => [r.task_id, r.agent_id])).toEqual([[null, "cli"]]);
  });

  it("provider resume ends a pause now and records who did it", async () => {
    expect(await rosterOk(["provider", "ls", ...db()])).toMatch(/^acme +rate-limit /m);
    await rosterOk(["provider", "resume", "acme", ...db()]);
    expect(await rosterJson<unknown[]>(["provider", "ls", ...db()])).toEqual([]);
    expect(auditRows("provider:resumed").map((r) => [r.agent_id, JSON.parse(r.data)])).toEqual([["cli", { provider: "acme" }]]);
  });

  it("breaker reset closes an open breaker and records its state before", async () => {
    expect(await rosterOk(["breaker", "ls", ...db()])).toMatch(/^worker +open +2 +1 /m);
    await rosterOk(["breaker", "reset", "worker", ...db()]);
    expect(await rosterJson<unknown[]>(["breaker", "ls", ...db()])).toEqual([]);
    expect(auditRows("breaker:reset").map((r) => JSON.parse(r.data))).toEqual([expect.objectContaining({ persona: "worker", state: "open", consecutiveFailures: 2 })]);
    const report = await rosterJson<{ reasons: Array<{ code: string }> }>(["why", String(ids.waiting), ...db()]);
    expect(report.reasons.map((r) => r.code)).toEqual(["ready"]);
  });

  it("a refused command writes nothing", async () => {
    const before = await tableCounts(t.path);
    const res = await roster(["breaker", "reset", "worker", ...db()]);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe('roster: INVALID_STATE: persona "worker": its breaker is closed with no failures counted; nothing to reset\n');
    expect(await tableCounts(t.path)).toEqual(before);
  });
});

describe("metrics and MCP", () => {
  it("counts tokens by persona, model and kind, and dollars by persona and model, from usage:recorded", async () => {
    const s = await openTestStore({ memory: true });
    const metrics = createMetrics({ store: s.store, defaultMetrics: false });
    try {
      await s.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "a" }, { persona: "worker", title: "b" }], now: s.clock.now() });
      for (const task of await s.store.tasks.claim({ persona: "worker", agentId: "a", limit: 2, now: s.clock.now() })) {
        await s.store.tasks.completeIfLeased({ taskId: task.id, leaseToken: task.leaseToken, usage: SONNET, now: s.clock.now() });
      }
      const samples = parseExposition(await metrics.scrape());
      const labels = { persona: "worker", model: "claude-sonnet-4-5" };
      expect(valueOf(samples, "roster_tokens_total", { ...labels, kind: "input" })).toBe(2_000);
      expect(valueOf(samples, "roster_tokens_total", { ...labels, kind: "cacheRead" })).toBe(4_000);
      expect(valueOf(samples, "roster_tokens_total", { ...labels, kind: "reasoning" })).toBe(100);
      expect(valueOf(samples, "roster_cost_usd_total", labels)).toBeCloseTo(2 * SONNET_USD, 9);
      // Gauges read at scrape time: a breaker that opened, a provider paused until a time.
      await s.store.personas.sync({ personas: PERSONAS, now: s.clock.now() });
      await s.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "c" }, { persona: "worker", title: "d" }, { persona: "reviewer", title: "e" }], now: s.clock.now() });
      for (const task of await s.store.tasks.claim({ persona: "worker", agentId: "a", limit: 2, now: s.clock.now() })) {
        await s.store.tasks.failIfLeased({ taskId: task.id, leaseToken: task.leaseToken, error: { message: "boom" }, now: s.clock.now() });
      }
      const [limited] = await s.store.tasks.claim({ persona: "reviewer", agentId: "a", now: s.clock.now() });
      const until = Date.now() + 60_000;
      await s.store.tasks.failIfLeased({ taskId: limited!.id, leaseToken: limited!.leaseToken, error: { message: "429", details: { failure: "usage-limit", resetAt: until } } as never, now: s.clock.now() });
      const gauges = parseExposition(await metrics.scrape());
      expect(valueOf(gauges, "roster_breaker_state", { persona: "worker", state: "open" })).toBe(1);
      expect(valueOf(gauges, "roster_provider_paused_until_seconds", { provider: "acme" })).toBe(until / 1000);
    } finally {
      metrics.detach();
      await s.close();
    }
  });

  it("complete_task and fail_task take usage; a bad one is refused with nothing written; get_progress has the cost", async () => {
    const s = await openTestStore({ memory: true });
    const { client, close } = await connectInProcess({ store: s.store, clock: s.clock, profile: "all" });
    try {
      const { ids: [a, b] } = await s.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "a" }, { persona: "worker", title: "b" }], now: s.clock.now() });
      const first = await call(client, "claim_task", { persona: "worker" });
      await call(client, "complete_task", { taskId: first.task.id, leaseToken: first.leaseToken, usage: { model: "gpt-5", inputTokens: 1_000, outputTokens: 100, costUsd: 0.02 } });
      const second = await call(client, "claim_task", { persona: "worker" });
      const before = await s.rowCounts();
      const bad = await callFailing(client, "fail_task", { taskId: second.task.id, leaseToken: second.leaseToken, error: "no", usage: { tokens: 5 } });
      expect(bad.text).toMatch(/usage\.tokens: unknown field \(known: .*inputTokens/);
      expect(await s.rowCounts()).toEqual(before);
      await call(client, "fail_task", { taskId: second.task.id, leaseToken: second.leaseToken, error: "no", usage: { model: "gpt-5", inputTokens: 50 } });
      expect((await s.store.economics.usageOf({ taskId: a! }))[0]).toMatchObject({ costUsd: 0.02, costSource: "reported", inputTokens: 1_000 });
      expect((await s.store.economics.usageOf({ taskId: b! }))[0]).toMatchObject({ outcome: "retrying", inputTokens: 50 });
      const progress = await call(client, "get_progress", { rootId: a! });
      expect(progress.cost).toEqual({ usd: 0.02, tokens: 1_100, inputTokens: 1_000, outputTokens: 100, attempts: 1, unpriced: 0 });
    } finally {
      await close();
      await s.close();
    }
  });
});
