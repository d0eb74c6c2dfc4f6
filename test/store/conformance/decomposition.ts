import { expect, it } from "vitest";
import { collect } from "../../helpers/events.js";
import { MAX_PAYLOAD_BYTES_DEFAULT } from "../../../src/store/index.js";
import { claimOne, enqueue, enqueueOne, eventTypes, expectRefused, snapshot, status, type GetCtx } from "./support.js";

/** docs/ARCHITECTURE.md rule 8 (decomposition) and the completer's batched commit. */
export function decompositionRules(get: GetCtx): void {
  it("rule 8: children returned with a completion are enqueued under it in the same transaction", async () => {
    const ctx = get();
    const root = await enqueueOne(ctx, { persona: "planner", title: "goal" });
    const plan = await claimOne(ctx, "planner", "planner-agent");
    const result = await ctx.store.tasks.completeIfLeased({
      taskId: plan.id,
      leaseToken: plan.leaseToken,
      result: { plan: "two steps" },
      children: [
        { ref: "impl", persona: "worker", title: "implement" },
        { ref: "review", persona: "reviewer", title: "review", dependsOn: ["impl"] },
      ],
      now: ctx.clock.now(),
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.childIds).toHaveLength(2);
    expect(result.childRefs).toEqual({ impl: result.childIds[0], review: result.childIds[1] });
    const parent = await ctx.store.tasks.get({ taskId: root });
    expect(parent.status).toBe("completed");
    expect(parent.children.map((c) => c.id)).toEqual(result.childIds);
    const [impl, review] = await Promise.all(result.childIds.map((taskId) => ctx.store.tasks.get({ taskId })));
    expect(impl).toMatchObject({ parentId: root, rootId: root, status: "pending", createdBy: "planner-agent" });
    expect(review).toMatchObject({ parentId: root, rootId: root, status: "waiting", dependsOn: [impl!.id] });
    const completed = parent.events.find((e) => e.type === "task:completed")!;
    const enqueued = impl!.events.find((e) => e.type === "task:enqueued")!;
    expect(enqueued.at).toBe(completed.at);
    // Grandchildren keep the same root.
    const child = await claimOne(ctx, "worker");
    const grand = await ctx.store.tasks.completeIfLeased({
      taskId: child.id,
      leaseToken: child.leaseToken,
      children: [{ persona: "worker", title: "sub-step" }],
      now: ctx.clock.now(),
    });
    expect(grand.ok && (await ctx.store.tasks.get({ taskId: grand.childIds[0]! })).rootId).toBe(root);
  });

  it("rule 8: a child with an unknown persona rolls back the whole completion (completeIfLeased)", async () => {
    const ctx = get();
    await enqueueOne(ctx, { persona: "planner", title: "goal" });
    const plan = await claimOne(ctx, "planner");
    await expectRefused(
      ctx,
      () =>
        ctx.store.tasks.completeIfLeased({
          taskId: plan.id,
          leaseToken: plan.leaseToken,
          result: { ok: true },
          children: [
            { ref: "fine", persona: "worker", title: "fine" },
            { ref: "odd", persona: "ghost", title: "odd" },
          ],
          now: ctx.clock.now(),
        }),
      "PERSONA_NOT_FOUND",
      ['tasks[1] (ref "odd").persona', '"ghost"'],
      [plan.id],
    );
    expect(await status(ctx, plan.id)).toBe("claimed");
    // The lease still holds: a corrected completion goes through.
    const retried = await ctx.store.tasks.completeIfLeased({
      taskId: plan.id,
      leaseToken: plan.leaseToken,
      children: [{ persona: "worker", title: "fine" }],
      now: ctx.clock.now(),
    });
    expect(retried.ok).toBe(true);
  });

  it("rule 8: in settle a bad child list fails only that task's attempt with ADAPTER_OUTPUT_INVALID", async () => {
    const ctx = get();
    await enqueue(ctx, [
      { persona: "worker", title: "bad planner output" },
      { persona: "worker", title: "good" },
    ]);
    const [bad, good] = await ctx.store.tasks.claim({ persona: "worker", agentId: "a", limit: 2, now: ctx.clock.now() });
    const before = await snapshot(ctx);
    const results = await ctx.store.tasks.settle({
      settlements: [
        { kind: "complete", taskId: bad!.id, leaseToken: bad!.leaseToken, result: 1, children: [{ persona: "ghost", title: "x" }] },
        { kind: "complete", taskId: good!.id, leaseToken: good!.leaseToken, result: 2 },
      ],
      now: ctx.clock.now(),
    });
    expect(results[0]).toMatchObject({ ok: true, outcome: "retrying", attempt: 1 });
    expect(results[1]).toMatchObject({ ok: true, childIds: [] });
    expect(await ctx.store.tasks.get({ taskId: bad!.id })).toMatchObject({ status: "pending", result: null, error: { code: "ADAPTER_OUTPUT_INVALID" } });
    expect((await ctx.store.tasks.get({ taskId: bad!.id })).error?.message).toContain("ghost");
    expect(await ctx.store.tasks.get({ taskId: good!.id })).toMatchObject({ status: "completed", result: 2 });
    const after = await snapshot(ctx);
    expect(after.rows.tasks).toBe(before.rows.tasks);
    expect(await eventTypes(ctx, bad!.id)).not.toContain("task:completed");
  });

  it("settle commits completions, failures and releases in one call, results in input order", async () => {
    const ctx = get();
    const ids = await enqueue(ctx, Array.from({ length: 4 }, (_, i) => ({ persona: "worker", title: `t${i}` })));
    const claimed = await ctx.store.tasks.claim({ persona: "worker", agentId: "a", limit: 4, now: ctx.clock.now() });
    const [c, f, r, s] = claimed;
    const results = await ctx.store.tasks.settle({
      settlements: [
        { kind: "complete", taskId: c!.id, leaseToken: c!.leaseToken, result: "done" },
        { kind: "fail", taskId: f!.id, leaseToken: f!.leaseToken, error: { message: "no", retryable: false } },
        { kind: "release", taskId: r!.id, leaseToken: r!.leaseToken, reason: "shutdown" },
        { kind: "complete", taskId: s!.id, leaseToken: "stale", result: "late" },
      ],
      now: ctx.clock.now(),
    });
    // Each result says what was recorded (docs/ARCHITECTURE.md, "One path per transition").
    expect(results).toEqual([
      { ok: true, outcome: "completed", attempt: 1, childIds: [], childRefs: {} },
      { ok: true, outcome: "failed", attempt: 1, blocked: [], code: "ADAPTER_FAILED" },
      { ok: true, outcome: "released", attempt: 1, runAt: ctx.clock.now() },
      { ok: false, code: "LEASE_LOST" },
    ]);
    expect(await Promise.all(ids.map((id) => status(ctx, id)))).toEqual(["completed", "failed", "pending", "claimed"]);
  });

  it("a result given as JSON text (a pool worker's) is stored as that text, its usage read from it; over the size limit it fails the attempt", async () => {
    const ctx = get();
    const ids = await enqueue(ctx, Array.from({ length: 2 }, (_, i) => ({ persona: "worker", title: `t${i}` })));
    const [small, big] = await ctx.store.tasks.claim({ persona: "worker", agentId: "a", limit: 2, now: ctx.clock.now() });
    const text = JSON.stringify({ text: "done \u00e9", usage: { model: "my-local-model", inputTokens: 7 } });
    const results = await ctx.store.tasks.settle({
      settlements: [
        { kind: "complete", taskId: small!.id, leaseToken: small!.leaseToken, resultJson: text },
        { kind: "complete", taskId: big!.id, leaseToken: big!.leaseToken, resultJson: JSON.stringify("x".repeat(MAX_PAYLOAD_BYTES_DEFAULT)) },
      ],
      now: ctx.clock.now(),
    });
    expect(results).toEqual([
      { ok: true, outcome: "completed", attempt: 1, childIds: [], childRefs: {} },
      { ok: true, outcome: "retrying", attempt: 1, runAt: expect.any(Number), code: "ADAPTER_OUTPUT_INVALID" },
    ]);
    expect(await ctx.store.tasks.get({ taskId: ids[0]! })).toMatchObject({ status: "completed", result: JSON.parse(text) });
    expect((await ctx.store.tasks.resultPage({ taskId: ids[0]!, offset: 0, limit: 1_000 })).text).toBe(text);
    expect(await ctx.store.economics.usageOf({ taskId: ids[0]! })).toMatchObject([{ attempt: 1, outcome: "completed", model: "my-local-model", inputTokens: 7 }]);
    const bad = await ctx.store.tasks.get({ taskId: ids[1]! });
    expect(bad).toMatchObject({ status: "pending", result: null, error: { code: "ADAPTER_OUTPUT_INVALID" } });
    expect(bad.error?.message).toMatch(/result is \d+ bytes of JSON, over the limit of \d+/);
  });

  it("a completion gives its result once: as a value or as JSON text, not both (refused, nothing written)", async () => {
    const ctx = get();
    const [id] = await enqueue(ctx, [{ persona: "worker", title: "t" }]);
    const t = await claimOne(ctx);
    await expectRefused(
      ctx,
      () => ctx.store.tasks.completeIfLeased({ taskId: t.id, leaseToken: t.leaseToken, result: 1, resultJson: "2", now: ctx.clock.now() }),
      "VALIDATION",
      ["result: give result or resultJson, not both"],
      [id!],
    );
    expect(await ctx.store.tasks.get({ taskId: id! })).toMatchObject({ status: "claimed", attempts: 1, result: null });
  });

  it("rule 2: settle completing two dependencies of one task in a batch readies it once, after the higher id", async () => {
    const ctx = get();
    const [a, b, d] = await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "a" },
      { ref: "b", persona: "worker", title: "b" },
      { ref: "d", persona: "worker", title: "d", dependsOn: ["a", "b"] },
    ]);
    const claimed = await ctx.store.tasks.claim({ persona: "worker", agentId: "a", limit: 2, now: ctx.clock.now() });
    const completed = collect(ctx.store.events, "task:completed");
    const ready = collect(ctx.store.events, "task:ready");
    const results = await ctx.store.tasks.settle({
      settlements: claimed.map((t) => ({ kind: "complete" as const, taskId: t.id, leaseToken: t.leaseToken, result: { from: t.title } })),
      now: ctx.clock.now(),
    });
    completed.stop();
    ready.stop();
    expect(results).toEqual([
      { ok: true, outcome: "completed", attempt: 1, childIds: [], childRefs: {} },
      { ok: true, outcome: "completed", attempt: 1, childIds: [], childRefs: {} },
    ]);
    expect(await status(ctx, d!)).toBe("pending");
    const readyEvents = (await ctx.store.tasks.events({ taskId: d!, limit: 0 })).filter((e) => e.type === "task:ready");
    expect(readyEvents.map((e) => e.data)).toEqual([{ after: Math.max(a!, b!) }]);
    const completedData = async (id: number) => (await ctx.store.tasks.events({ taskId: id, limit: 0 })).find((e) => e.type === "task:completed")!.data;
    expect(await completedData(Math.max(a!, b!))).toEqual({ readied: 1 });
    expect(await completedData(Math.min(a!, b!))).toEqual({ readied: 0 });
    expect(completed.items.map((e) => e.readied).sort()).toEqual([0, 1]);
    expect(ready.items).toEqual([{ ids: [d], personas: ["worker"] }]);
    const [next] = await ctx.store.tasks.claim({ persona: "worker", agentId: "a", now: ctx.clock.now() });
    expect(next!.dependencies.map((dep) => dep.result)).toEqual([{ from: "a" }, { from: "b" }]);
  });

  it("settle records the same task row and events as completeIfLeased does for each task", async () => {
    const ctx = get();
    const ids = await enqueue(ctx, [
      { persona: "worker", title: "one" },
      { persona: "worker", title: "two" },
    ]);
    const [one, two] = await ctx.store.tasks.claim({ persona: "worker", agentId: "a", limit: 2, now: ctx.clock.now() });
    await ctx.store.tasks.completeIfLeased({ taskId: one!.id, leaseToken: one!.leaseToken, result: { n: 1, s: "x" }, now: ctx.clock.now() });
    await ctx.store.tasks.settle({ settlements: [{ kind: "complete", taskId: two!.id, leaseToken: two!.leaseToken, result: { n: 1, s: "x" } }], now: ctx.clock.now() });
    const [first, second] = await Promise.all(ids.map((id) => ctx.store.tasks.get({ taskId: id })));
    const comparable = (t: NonNullable<typeof first>) => ({ ...t, id: 0, rootId: 0, title: "", events: t.events.map((e) => ({ ...e, id: 0, taskId: 0 })) });
    expect(comparable(second!)).toEqual(comparable(first!));
    expect(second!.result).toEqual({ n: 1, s: "x" });
  });

  it("one path: settle with invalid 'refuse' refuses bad output before any write and keeps the lease; the default records a failed attempt", async () => {
    const ctx = get();
    const id = await enqueueOne(ctx);
    const task = await claimOne(ctx);
    const bad = { kind: "complete" as const, taskId: id, leaseToken: task.leaseToken, children: [{ persona: "nobody", title: "x" }] };
    await expectRefused(ctx, () => ctx.store.tasks.settle({ settlements: [bad], now: ctx.clock.now(), invalid: "refuse" }), "PERSONA_NOT_FOUND", ["nobody"], [id]);
    // The lease is still current: the same call, recorded this time, says what it recorded.
    const [recorded] = await ctx.store.tasks.settle({ settlements: [bad], now: ctx.clock.now() });
    expect(recorded).toMatchObject({ ok: true, outcome: "retrying", attempt: 1, code: "ADAPTER_OUTPUT_INVALID" });
  });

  it("one path: claim takes a named task by id only when it is ready, with the same lease and events as a persona's claim", async () => {
    const ctx = get();
    const [first, second] = await enqueue(ctx, [
      { persona: "worker", title: "first" },
      { persona: "worker", title: "second", delayMs: 60_000 },
    ]);
    expect(await ctx.store.tasks.claim({ taskId: second!, agentId: "a", now: ctx.clock.now() })).toEqual([]);
    const [named] = await ctx.store.tasks.claim({ taskId: first!, agentId: "a", now: ctx.clock.now() });
    expect(named).toMatchObject({ id: first, attempt: 1, persona: "worker" });
    expect(await ctx.store.tasks.claim({ taskId: first!, agentId: "b", now: ctx.clock.now() })).toEqual([]);
    expect(await eventTypes(ctx, first!)).toContain("task:claimed");
    expect(await ctx.store.tasks.completeIfLeased({ taskId: first!, leaseToken: named!.leaseToken, now: ctx.clock.now() })).toMatchObject({ ok: true, outcome: "completed" });
  });

  it("settle fails a completion whose result cannot be stored with ADAPTER_OUTPUT_INVALID, and completes the others", async () => {
    const ctx = get();
    await enqueue(ctx, [
      { persona: "worker", title: "good" },
      { persona: "worker", title: "bad" },
    ]);
    const [good, bad] = await ctx.store.tasks.claim({ persona: "worker", agentId: "a", limit: 2, now: ctx.clock.now() });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const results = await ctx.store.tasks.settle({
      settlements: [
        { kind: "complete", taskId: good!.id, leaseToken: good!.leaseToken, result: null },
        { kind: "complete", taskId: bad!.id, leaseToken: bad!.leaseToken, result: circular as never },
      ],
      now: ctx.clock.now(),
    });
    expect(results[0]).toEqual({ ok: true, outcome: "completed", attempt: 1, childIds: [], childRefs: {} });
    expect(results[1]).toMatchObject({ ok: true, outcome: "retrying", code: "ADAPTER_OUTPUT_INVALID" });
    expect(await ctx.store.tasks.get({ taskId: good!.id })).toMatchObject({ status: "completed", result: null });
    const failed = await ctx.store.tasks.get({ taskId: bad!.id });
    expect(failed.status).toBe("pending");
    expect(failed.error).toMatchObject({ code: "ADAPTER_OUTPUT_INVALID" });
  });
}
