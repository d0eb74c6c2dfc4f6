import { expect, it } from "vitest";
import type { PersonaUpsert } from "../../../src/store/index.js";
import { TEST_PERSONAS, syncTestPersonas } from "../../helpers/personas.js";
import { claimOne, enqueue, eventTypes, status, type Ctx, type GetCtx } from "./support.js";

/** A human persona (approvals), one with a deadline that approves by default, and a planner whose plans need approval. */
export const HUMAN_PERSONAS: PersonaUpsert[] = [
  {
    id: "approver",
    name: "Approver",
    definition: "A person.",
    config: { id: "approver", name: "Approver", adapter: { kind: "human" }, concurrency: 1, leaseMs: 30_000, timeoutMs: 60_000 },
    sourcePath: null,
  },
  {
    id: "approver-default",
    name: "Approver with a deadline",
    definition: "A person who may not answer.",
    config: { id: "approver-default", name: "Approver with a deadline", adapter: { kind: "human", deadlineMs: 60_000, default: "approve" }, concurrency: 1, leaseMs: 30_000, timeoutMs: 60_000 },
    sourcePath: null,
  },
  {
    id: "gated-planner",
    name: "Gated planner",
    definition: "Plans, then waits for approval.",
    config: {
      id: "gated-planner",
      name: "Gated planner",
      adapter: { kind: "planner" },
      planApproval: "approver",
      concurrency: 1,
      leaseMs: 30_000,
      timeoutMs: 60_000,
      retry: { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 },
    },
    sourcePath: null,
  },
];

async function withHumans(ctx: Ctx): Promise<void> {
  await syncTestPersonas(ctx.store, ctx.clock.now(), [...TEST_PERSONAS, ...HUMAN_PERSONAS]);
}

/** Issue 17: approvals, questions, schedules and `why`, as every store must keep them. */
export function humanRules(get: GetCtx): void {
  it("a human persona's task waits in awaiting_approval, is never claimed, and approval completes it with the note as result", async () => {
    const ctx = get();
    await withHumans(ctx);
    const [gate, after] = await enqueue(ctx, [
      { ref: "gate", persona: "approver", title: "ship it?" },
      { ref: "after", persona: "worker", title: "ship", dependsOn: ["gate"] },
    ]);
    expect(await status(ctx, gate!)).toBe("awaiting_approval");
    expect(await ctx.store.tasks.claim({ persona: "approver", agentId: "a", now: ctx.clock.now() })).toEqual([]);
    const parked = await ctx.store.humans.listParked();
    expect(parked.map((p) => [p.id, p.status, p.request?.question])).toEqual([[gate, "awaiting_approval", "ship it?"]]);
    ctx.clock.advance(10);
    const { readied } = await ctx.store.humans.approve({ taskId: gate!, note: "go", by: "cli:ann", now: ctx.clock.now() });
    expect(readied).toEqual([after]);
    const detail = await ctx.store.tasks.get({ taskId: gate! });
    expect(detail.status).toBe("completed");
    expect(detail.attempts).toBe(0);
    const task = await claimOne(ctx);
    expect(task.dependencies[0]!.result).toEqual({ approved: true, note: "go", by: "cli:ann" });
    const events = await ctx.store.tasks.events({ taskId: gate! });
    // The request is written by the transition that parks the task, which may come before or after the enqueue's own row.
    expect(events.map((e) => e.type).sort()).toEqual(["approval:approved", "approval:requested", "task:enqueued"]);
    expect(events.at(-1)!.type).toBe("approval:approved");
    expect(events[2]!.agentId).toBe("cli:ann");
    expect(await ctx.store.humans.listParked()).toEqual([]);
  });

  it("rejection fails the approval task (not retryable) and blocks its dependents", async () => {
    const ctx = get();
    await withHumans(ctx);
    const [gate, after] = await enqueue(ctx, [
      { ref: "gate", persona: "approver", title: "ship it?" },
      { ref: "after", persona: "worker", title: "ship", dependsOn: ["gate"] },
    ]);
    const { blocked } = await ctx.store.humans.reject({ taskId: gate!, reason: "not yet", by: "cli", now: ctx.clock.now() });
    expect(blocked).toEqual([after]);
    const detail = await ctx.store.tasks.get({ taskId: gate! });
    expect(detail.status).toBe("failed");
    expect(detail.error).toMatchObject({ code: "REJECTED", retryable: false });
    expect(await status(ctx, after!)).toBe("blocked");
    expect(await eventTypes(ctx, gate!)).toContain("approval:rejected");
  });

  it("approve, reject and answer refuse a task in another state, an unknown task, and an empty reason, writing nothing", async () => {
    const ctx = get();
    await withHumans(ctx);
    const id = (await enqueue(ctx, [{ persona: "worker", title: "plain" }]))[0]!;
    await expect(ctx.store.humans.approve({ taskId: id, now: ctx.clock.now() })).rejects.toMatchObject({ code: "INVALID_STATE" });
    await expect(ctx.store.humans.answer({ taskId: id, answer: "x", now: ctx.clock.now() })).rejects.toMatchObject({ code: "INVALID_STATE" });
    await expect(ctx.store.humans.approve({ taskId: 999, now: ctx.clock.now() })).rejects.toMatchObject({ code: "TASK_NOT_FOUND" });
    const gate = (await enqueue(ctx, [{ persona: "approver", title: "ok?" }]))[0]!;
    await expect(ctx.store.humans.reject({ taskId: gate, reason: " ", now: ctx.clock.now() })).rejects.toMatchObject({ code: "VALIDATION" });
    expect(await status(ctx, gate)).toBe("awaiting_approval");
    expect(await eventTypes(ctx, id)).toEqual(["task:enqueued"]);
  });

  it("a deadline's default outcome applies once the deadline has passed, recorded as by the deadline", async () => {
    const ctx = get();
    await withHumans(ctx);
    const [gate, after] = await enqueue(ctx, [
      { ref: "gate", persona: "approver-default", title: "ok?" },
      { ref: "after", persona: "worker", title: "go", dependsOn: ["gate"] },
    ]);
    ctx.clock.advance(59_999);
    expect(await ctx.store.humans.applyDeadlines({ now: ctx.clock.now() })).toEqual([]);
    ctx.clock.advance(1);
    expect(await ctx.store.humans.applyDeadlines({ now: ctx.clock.now() })).toEqual([{ taskId: gate, outcome: "approved" }]);
    expect(await status(ctx, gate!)).toBe("completed");
    expect(await status(ctx, after!)).toBe("pending");
    const events = await ctx.store.tasks.events({ taskId: gate! });
    expect(events.at(-1)).toMatchObject({ type: "approval:approved", agentId: "deadline" });
  });

  it("a task's payload overrides the deadline: reject by default", async () => {
    const ctx = get();
    await withHumans(ctx);
    const gate = (await enqueue(ctx, [{ persona: "approver", title: "ok?", payload: { approval: { deadlineMs: 1_000, default: "reject" } } }]))[0]!;
    ctx.clock.advance(1_000);
    expect(await ctx.store.humans.applyDeadlines({ now: ctx.clock.now() })).toEqual([{ taskId: gate, outcome: "rejected" }]);
    expect(await status(ctx, gate)).toBe("failed");
  });

  it("a human persona's task readied by its dependency's completion parks with its request (deadline, default, question) and event", async () => {
    const ctx = get();
    await withHumans(ctx);
    const [first, gate, plain] = await enqueue(ctx, [
      { ref: "first", persona: "worker", title: "build" },
      { ref: "gate", persona: "approver-default", title: "ship it?", description: "the build is done", dependsOn: ["first"], payload: { approval: { deadlineMs: 5_000 } } },
      { ref: "plain", persona: "worker", title: "log", dependsOn: ["first"] },
    ]);
    expect(await status(ctx, gate!)).toBe("waiting");
    const task = await claimOne(ctx);
    ctx.clock.advance(100);
    const at = ctx.clock.now();
    const [done] = await ctx.store.tasks.settle({ settlements: [{ kind: "complete", taskId: first!, leaseToken: task.leaseToken, result: "built" }], now: at });
    expect(done).toMatchObject({ ok: true, outcome: "completed" });
    expect(await status(ctx, gate!)).toBe("awaiting_approval");
    expect(await status(ctx, plain!)).toBe("pending");
    const [request] = await ctx.store.humans.requests({ taskId: gate! });
    expect(request).toMatchObject({ kind: "approval", question: "ship it?\n\nthe build is done", askedAt: at, deadlineAt: at + 5_000, defaultOutcome: "approve", outcome: null });
    const events = await ctx.store.tasks.events({ taskId: gate! });
    expect(events.find((e) => e.type === "approval:requested")).toMatchObject({ at, data: { requestId: request!.id, deadlineAt: at + 5_000, default: "approve" } });
    expect(events.map((e) => e.type)).toContain("task:ready");
    expect(await ctx.store.tasks.claim({ persona: "approver-default", agentId: "a", now: ctx.clock.now() })).toEqual([]);
  });

  it("a task whose persona turned human parks when its attempt is released, retried or its task retried by hand, never becoming claimable", async () => {
    const ctx = get();
    const turncoat = (kind: string): PersonaUpsert => ({
      id: "turncoat",
      name: "Turncoat",
      definition: "Changes its adapter.",
      config: { id: "turncoat", name: "Turncoat", adapter: { kind }, concurrency: 4, leaseMs: 30_000, timeoutMs: 60_000, retry: { maxAttempts: 2, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 } },
      sourcePath: null,
    });
    await syncTestPersonas(ctx.store, ctx.clock.now(), [...TEST_PERSONAS, turncoat("echo")]);
    const [released, retried, failed] = await enqueue(ctx, [
      { persona: "turncoat", title: "released" },
      { persona: "turncoat", title: "retried" },
      { persona: "turncoat", title: "failed", maxAttempts: 1 },
    ]);
    const claimed = await ctx.store.tasks.claim({ persona: "turncoat", agentId: "a", limit: 3, now: ctx.clock.now() });
    expect(claimed.map((t) => t.id).sort()).toEqual([released, retried, failed]);
    const lease = (id: number) => claimed.find((t) => t.id === id)!.leaseToken;
    const last = await ctx.store.tasks.failIfLeased({ taskId: failed!, leaseToken: lease(failed!), error: { name: "Error", message: "no", retryable: true }, now: ctx.clock.now() });
    expect(last).toMatchObject({ ok: true, outcome: "failed" });
    await syncTestPersonas(ctx.store, ctx.clock.now(), [...TEST_PERSONAS, turncoat("human")]);
    expect(await ctx.store.tasks.releaseIfLeased({ taskId: released!, leaseToken: lease(released!), now: ctx.clock.now() })).toMatchObject({ outcome: "released" });
    const again = await ctx.store.tasks.failIfLeased({ taskId: retried!, leaseToken: lease(retried!), error: { name: "Error", message: "flaky", retryable: true }, now: ctx.clock.now() });
    expect(again).toMatchObject({ ok: true, outcome: "retrying" });
    // The retry reports and records the state the task is in: parked, not pending.
    expect(await ctx.store.tasks.retry({ taskId: failed!, now: ctx.clock.now() })).toMatchObject({ status: "awaiting_approval" });
    expect((await ctx.store.tasks.events({ taskId: failed! })).find((e) => e.type === "task:retried")).toMatchObject({ data: { from: "failed", status: "awaiting_approval" } });
    for (const id of [released!, retried!, failed!]) {
      expect(await status(ctx, id)).toBe("awaiting_approval");
      expect((await ctx.store.humans.requests({ taskId: id })).map((r) => [r.kind, r.outcome])).toEqual([["approval", null]]);
      expect(await eventTypes(ctx, id)).toContain("approval:requested");
    }
    ctx.clock.advance(60_000);
    expect(await ctx.store.tasks.claim({ persona: "turncoat", agentId: "a", limit: 3, now: ctx.clock.now() })).toEqual([]);
    expect((await ctx.store.tasks.counts())["turncoat"]).toEqual({ awaiting_approval: 3 });
  });

  it("a planner with planApproval enqueues its children behind one approval task holding the plan in full", async () => {
    const ctx = get();
    await withHumans(ctx);
    const planner = (await enqueue(ctx, [{ persona: "gated-planner", title: "plan" }]))[0]!;
    const task = await claimOne(ctx, "gated-planner");
    const done = await ctx.store.tasks.completeIfLeased({
      taskId: planner,
      leaseToken: task.leaseToken,
      result: "planned",
      children: [
        { ref: "a", persona: "worker", title: "build", description: "build the thing" },
        { ref: "b", persona: "worker", title: "test", dependsOn: ["a"] },
      ],
      now: ctx.clock.now(),
    });
    expect(done.ok).toBe(true);
    if (!done.ok) return;
    const [gate, a, b] = done.childIds;
    const detail = await ctx.store.tasks.get({ taskId: gate! });
    expect(detail.persona).toBe("approver");
    expect(detail.status).toBe("awaiting_approval");
    expect(detail.description).toContain("1. [worker] build (ref a)");
    expect(detail.description).toContain("build the thing");
    expect(detail.description).toContain("2. [worker] test (ref b) after a");
    expect(await status(ctx, a!)).toBe("waiting");
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "w", now: ctx.clock.now() })).toEqual([]);
    await ctx.store.humans.approve({ taskId: gate!, now: ctx.clock.now() });
    expect((await claimOne(ctx, "worker")).id).toBe(a);
    expect(await status(ctx, b!)).toBe("waiting");
  });

  it("a question parks the attempt uncounted; the answer returns it to pending and the next claim carries question and answer", async () => {
    const ctx = get();
    const id = (await enqueue(ctx, [{ persona: "worker", title: "ask" }]))[0]!;
    const first = await claimOne(ctx, "worker", "agent-a");
    expect(first.attempt).toBe(1);
    expect(first.inputs).toBeUndefined();
    const settled = await ctx.store.tasks.settle({
      settlements: [{ kind: "fail", taskId: id, leaseToken: first.leaseToken, error: { name: "HumanInputRequest", code: "INPUT_REQUESTED", message: "which branch?", retryable: true } }],
      now: ctx.clock.now(),
    });
    expect(settled[0]).toEqual({ ok: true, outcome: "parked", attempt: 1 });
    let detail = await ctx.store.tasks.get({ taskId: id });
    expect(detail.status).toBe("awaiting_input");
    expect(detail.attempts).toBe(0);
    expect(detail.leaseExpiresAt).toBeNull();
    expect(await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", now: ctx.clock.now() })).toEqual([]);
    // The old lease is gone: a late completion of the parked attempt is refused.
    expect((await ctx.store.tasks.completeIfLeased({ taskId: id, leaseToken: first.leaseToken, now: ctx.clock.now() })).ok).toBe(false);
    ctx.clock.advance(5);
    await ctx.store.humans.answer({ taskId: id, answer: "main", by: "cli:bo", now: ctx.clock.now() });
    const second = await claimOne(ctx, "worker", "agent-b");
    expect(second.attempt).toBe(1);
    expect(second.inputs).toEqual([{ question: "which branch?", answer: "main", attempt: 1, askedAt: ctx.clock.now() - 5, answeredAt: ctx.clock.now(), answeredBy: "cli:bo" }]);
    detail = await ctx.store.tasks.get({ taskId: id, eventLimit: 100 });
    expect(detail.events.map((e) => [e.type, e.agentId])).toEqual([
      ["task:enqueued", null],
      ["task:claimed", "agent-a"],
      ["input:requested", "agent-a"],
      ["input:answered", "cli:bo"],
      ["task:claimed", "agent-b"],
    ]);
    const requests = await ctx.store.humans.requests({ taskId: id });
    expect(requests.map((r) => [r.kind, r.question, r.outcome, r.answer])).toEqual([["input", "which branch?", "answered", "main"]]);
  });

  it("askIfLeased parks like the settlement does and refuses a lease that is not current", async () => {
    const ctx = get();
    const id = (await enqueue(ctx, [{ persona: "worker", title: "ask" }]))[0]!;
    const task = await claimOne(ctx);
    expect(await ctx.store.humans.askIfLeased({ taskId: id, leaseToken: "nope", question: "q?", now: ctx.clock.now() })).toEqual({ ok: false, code: "LEASE_LOST" });
    expect(await ctx.store.humans.askIfLeased({ taskId: id, leaseToken: task.leaseToken, question: "q?", now: ctx.clock.now() })).toEqual({ ok: true });
    expect(await status(ctx, id)).toBe("awaiting_input");
  });

  it("a schedule's fire is taken once: the second taker of the same fire writes nothing, and the task has the fire's key", async () => {
    const ctx = get();
    const now = ctx.clock.now();
    const [s] = await ctx.store.schedules.upsert({ schedules: [{ id: "nightly", cron: "0 0 * * *", task: { persona: "worker", title: "upgrade" }, nextFireAt: now + 1_000 }], now });
    expect(s).toMatchObject({ id: "nightly", missed: "skip", pausedAt: null, nextFireAt: now + 1_000 });
    ctx.clock.advance(1_000);
    expect((await ctx.store.schedules.due({ now: ctx.clock.now() })).map((d) => d.id)).toEqual(["nightly"]);
    const fire = { scheduleId: "nightly", expectedNextFireAt: now + 1_000, fireAts: [now + 1_000], skipped: [], nextFireAt: now + 2_000, now: ctx.clock.now() };
    const a = await ctx.store.schedules.fire({ ...fire, by: "sup-a" });
    const b = await ctx.store.schedules.fire({ ...fire, by: "sup-b" });
    expect(a.fired).toBe(true);
    expect(b).toEqual({ fired: false, taskIds: [] });
    const task = await ctx.store.tasks.get({ taskId: a.taskIds[0]! });
    expect(task.idempotencyKey).toBe(`schedule:nightly@${now + 1_000}`);
    expect(task.payload).toEqual({ schedule: { id: "nightly", fireAt: now + 1_000 } });
    expect(task.events.map((e) => [e.type, e.agentId])).toEqual([
      ["task:enqueued", "schedule:nightly"],
      ["schedule:fired", "sup-a"],
    ]);
    expect(await ctx.store.schedules.due({ now: ctx.clock.now() })).toEqual([]);
    expect(await ctx.store.schedules.nextFireAt()).toBe(now + 2_000);
  });

  it("a paused schedule is not due; schedules refuse a bad id, writing nothing", async () => {
    const ctx = get();
    const now = ctx.clock.now();
    await ctx.store.schedules.upsert({ schedules: [{ id: "h", cron: "0 * * * *", task: { persona: "worker", title: "t" }, nextFireAt: now }], now });
    await ctx.store.schedules.pause({ id: "h", paused: true, now });
    expect(await ctx.store.schedules.due({ now })).toEqual([]);
    await expect(ctx.store.schedules.upsert({ schedules: [{ id: "Bad Id", cron: "* * * * *", task: { persona: "worker", title: "t" }, nextFireAt: now }], now })).rejects.toMatchObject({ code: "VALIDATION" });
    expect((await ctx.store.schedules.list()).map((s) => s.id)).toEqual(["h"]);
  });

  it("a schedule with no next fire is never due, counts for no wake-up, and a resume may keep it so; a cursor no Date holds is refused", async () => {
    const ctx = get();
    const now = ctx.clock.now();
    await ctx.store.schedules.upsert({ schedules: [{ id: "once", cron: "0 0 0 1 1 *", task: { persona: "worker", title: "t" }, nextFireAt: now + 1_000 }], now });
    ctx.clock.advance(1_000);
    const fire = { scheduleId: "once", expectedNextFireAt: now + 1_000, fireAts: [now + 1_000], skipped: [], by: "sup-a", now: ctx.clock.now() };
    // A cursor past what a Date holds (what older versions parked such a schedule at) is refused, nothing written.
    await expect(ctx.store.schedules.fire({ ...fire, nextFireAt: Number.MAX_SAFE_INTEGER })).rejects.toMatchObject({ code: "VALIDATION" });
    expect((await ctx.store.schedules.get({ id: "once" }))!.nextFireAt).toBe(now + 1_000);
    expect((await ctx.store.schedules.fire({ ...fire, nextFireAt: null })).fired).toBe(true);
    expect(await ctx.store.schedules.get({ id: "once" })).toMatchObject({ nextFireAt: null, lastFireAt: now + 1_000, pausedAt: null });
    expect((await ctx.store.schedules.list()).map((s) => s.nextFireAt)).toEqual([null]);
    expect(await ctx.store.schedules.due({ now: 8_640_000_000_000_000 })).toEqual([]);
    expect(await ctx.store.schedules.nextFireAt()).toBeNull();
    // A re-add with the same expression keeps the cursor: still none.
    const [again] = await ctx.store.schedules.upsert({ schedules: [{ id: "once", cron: "0 0 0 1 1 *", task: { persona: "worker", title: "t2" }, nextFireAt: now + 5_000 }], now });
    expect(again!.nextFireAt).toBeNull();
    await ctx.store.schedules.pause({ id: "once", paused: true, now });
    expect(await ctx.store.schedules.pause({ id: "once", paused: false, nextFireAt: null, now })).toMatchObject({ pausedAt: null, nextFireAt: null });
    await expect(ctx.store.schedules.pause({ id: "once", paused: false, nextFireAt: Number.MAX_SAFE_INTEGER, now })).rejects.toMatchObject({ code: "VALIDATION" });
    expect(await ctx.store.schedules.pause({ id: "once", paused: false, nextFireAt: now + 9_000, now })).toMatchObject({ nextFireAt: now + 9_000 });
    // Paused and resumed without a cursor: the stored one stays.
    await ctx.store.schedules.pause({ id: "once", paused: true, now });
    expect(await ctx.store.schedules.pause({ id: "once", paused: false, now })).toMatchObject({ pausedAt: null, nextFireAt: now + 9_000 });
    expect(await ctx.store.schedules.nextFireAt()).toBe(now + 9_000);
  });

  it("schedules refuse a payload that is not an object or that holds the reserved key schedule, naming it, writing nothing", async () => {
    const ctx = get();
    const now = ctx.clock.now();
    const withPayload = (payload: unknown) => ({ id: "p", cron: "* * * * *", task: { persona: "worker", title: "t", payload: payload as never }, nextFireAt: now });
    for (const [payload, got] of [
      ["x", "a string"],
      [[1, 2], "an array"],
      [null, "null"],
      [3, "a number"],
    ] as const) {
      await expect(ctx.store.schedules.upsert({ schedules: [withPayload(payload)], now })).rejects.toMatchObject({
        code: "VALIDATION",
        message: `schedules[0].task.payload: must be an object (each fire adds payload.schedule = { id, fireAt } to it), got ${got}`,
      });
    }
    await expect(ctx.store.schedules.upsert({ schedules: [withPayload({ schedule: "mine" })], now })).rejects.toMatchObject({
      code: "VALIDATION",
      message: "schedules[0].task.payload.schedule: is reserved (each fire sets it to { id, fireAt }); name your key otherwise",
    });
    expect(await ctx.store.schedules.list()).toEqual([]);
    // An object payload keeps its keys beside the fire's.
    await ctx.store.schedules.upsert({ schedules: [withPayload({ repo: "x/y" })], now });
    const fired = await ctx.store.schedules.fire({ scheduleId: "p", expectedNextFireAt: now, fireAts: [now], skipped: [], nextFireAt: now + 60_000, by: "sup", now });
    expect((await ctx.store.tasks.get({ taskId: fired.taskIds[0]! })).payload).toEqual({ repo: "x/y", schedule: { id: "p", fireAt: now } });
  });

  it("schedules refuse an unknown or retired persona as an enqueue does, naming the schedule's field and the known personas, writing nothing", async () => {
    const ctx = get();
    const now = ctx.clock.now();
    const schedule = (id: string, persona: string) => ({ id, cron: "* * * * *", task: { persona, title: "t" }, nextFireAt: now });
    await expect(ctx.store.schedules.upsert({ schedules: [schedule("ok", "worker"), schedule("x", "workr")], now })).rejects.toMatchObject({
      code: "PERSONA_NOT_FOUND",
      message: 'schedules[1].task.persona: unknown persona "workr" (did you mean "worker"? known: planner, reviewer, worker)',
      details: { index: 1, field: "persona", persona: "workr" },
    });
    await ctx.store.personas.retire({ id: "reviewer", retired: true, now });
    await expect(ctx.store.schedules.upsert({ schedules: [schedule("y", "reviewer")], now })).rejects.toMatchObject({
      code: "PERSONA_NOT_FOUND",
      message: 'schedules[0].task.persona: retired persona "reviewer" (known: planner, worker)',
      details: { retired: true },
    });
    // All or nothing: the good schedule beside the bad one was not written either.
    expect(await ctx.store.schedules.list()).toEqual([]);
  });

  it("a fire of a schedule whose persona was retired pauses it instead, once, and a resume is refused until the persona is back", async () => {
    const ctx = get();
    const now = ctx.clock.now();
    await ctx.store.schedules.upsert({ schedules: [{ id: "r", cron: "* * * * *", task: { persona: "reviewer", title: "t" }, nextFireAt: now }], now });
    await ctx.store.personas.retire({ id: "reviewer", retired: true, now });
    const fire = { scheduleId: "r", expectedNextFireAt: now, fireAts: [now], skipped: [], nextFireAt: now + 60_000, now };
    expect(await ctx.store.schedules.fire({ ...fire, by: "sup-a" })).toEqual({
      fired: false,
      taskIds: [],
      paused: { code: "PERSONA_NOT_FOUND", message: 'schedule "r": task.persona: retired persona "reviewer" (known: planner, worker)' },
    });
    // The other taker of the same fire finds it paused: nothing to say, nothing written.
    expect(await ctx.store.schedules.fire({ ...fire, by: "sup-b" })).toEqual({ fired: false, taskIds: [] });
    const paused = (await ctx.store.schedules.get({ id: "r" }))!;
    expect(paused.pausedAt).toBe(now);
    expect(await ctx.store.schedules.due({ now: now + 120_000 })).toEqual([]);
    expect(await ctx.store.tasks.list({ limit: 0 })).toEqual([]);
    await expect(ctx.store.schedules.pause({ id: "r", paused: false, nextFireAt: now + 60_000, now })).rejects.toMatchObject({
      code: "PERSONA_NOT_FOUND",
      message: 'schedule "r": task.persona: retired persona "reviewer" (known: planner, worker)',
    });
    expect((await ctx.store.schedules.get({ id: "r" }))!.pausedAt).toBe(now);
    await ctx.store.personas.retire({ id: "reviewer", retired: false, now });
    expect((await ctx.store.schedules.pause({ id: "r", paused: false, nextFireAt: now + 60_000, now })).pausedAt).toBeNull();
  });
}
