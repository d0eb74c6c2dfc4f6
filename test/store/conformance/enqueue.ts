import { expect, it } from "vitest";
import { waitFor } from "../../helpers/events.js";
import { claimOne, complete, enqueue, enqueueOne, expectRefused, snapshot, type GetCtx } from "./support.js";

/** docs/ARCHITECTURE.md rule 1: enqueue is atomic and validated whole. */
export function enqueueRules(get: GetCtx): void {
  it("a task id is never given twice, even once prune deleted the newest tasks (git work is named by it)", async () => {
    const ctx = get();
    const first = await enqueueOne(ctx, { title: "first" });
    await complete(ctx, await claimOne(ctx));
    ctx.clock.advance(1_000);
    expect(await ctx.store.maintenance.prune({ before: ctx.clock.now() })).toMatchObject({ tasks: 1 });
    const next = await enqueueOne(ctx, { title: "next" });
    expect(next).toBeGreaterThan(first);
  });

  it("the database has an identity, the same on every read, with no legacy tasks when it was made with it", async () => {
    const ctx = get();
    const identity = await ctx.store.maintenance.identity();
    expect(identity.id).toMatch(/^[a-z][a-z0-9]{3,31}$/);
    expect(identity.legacyTaskIdsUpTo).toBe(0);
    expect(await ctx.store.maintenance.identity()).toEqual(identity);
  });

  it("rule 1: a batch with local refs and existing ids is written whole, with its dependencies", async () => {
    const ctx = get();
    const existing = await enqueueOne(ctx, { title: "existing" });
    const { ids, refs } = await ctx.store.tasks.enqueue({
      tasks: [
        { ref: "build", persona: "worker", title: "build" },
        { ref: "review", persona: "reviewer", title: "review", dependsOn: ["build", existing] },
        { persona: "worker", title: "ship", dependsOn: ["review"] },
      ],
      now: ctx.clock.now(),
    });
    expect(ids).toHaveLength(3);
    expect(refs).toEqual({ build: ids[0], review: ids[1] });
    const [build, review, ship] = await Promise.all(ids.map((taskId) => ctx.store.tasks.get({ taskId })));
    expect(build!.status).toBe("pending");
    expect(review!.status).toBe("waiting");
    expect(review!.unmetDependencies).toBe(2);
    expect(review!.dependsOn).toEqual([existing, ids[0]].sort((a, b) => a! - b!));
    expect(ship!.status).toBe("waiting");
    expect(ship!.dependsOn).toEqual([ids[1]]);
    expect(ship!.unmetDependencies).toBe(1);
  });

  it("rule 1: a batch with one unknown persona writes nothing", async () => {
    const ctx = get();
    await expectRefused(
      ctx,
      () =>
        enqueue(ctx, [
          { ref: "a", persona: "worker", title: "a" },
          { ref: "b", persona: "worker", title: "b", dependsOn: ["a"] },
          { ref: "c", persona: "nobody", title: "c" },
        ]),
      "PERSONA_NOT_FOUND",
      ['tasks[2] (ref "c").persona', '"nobody"'],
    );
    expect(await ctx.store.tasks.list({})).toEqual([]);
  });

  it("rule 1: a batch depending on a task id that does not exist writes nothing", async () => {
    const ctx = get();
    await expectRefused(
      ctx,
      () => enqueue(ctx, [{ persona: "worker", title: "a" }, { persona: "worker", title: "b", dependsOn: [987_654] }]),
      "DEPENDENCY_NOT_FOUND",
      ["tasks[1].dependsOn", "987654"],
    );
  });

  it("rule 1: a dependency on a completed task leaves the new task pending", async () => {
    const ctx = get();
    await enqueueOne(ctx);
    const done = await claimOne(ctx);
    await complete(ctx, done);
    const id = await enqueueOne(ctx, { dependsOn: [done.id] });
    const task = await ctx.store.tasks.get({ taskId: id });
    expect(task.status).toBe("pending");
    expect(task.unmetDependencies).toBe(0);
  });

  it("rule 1: a dependency on a failed task enqueues the new task blocked", async () => {
    const ctx = get();
    await enqueueOne(ctx);
    const bad = await claimOne(ctx);
    await ctx.store.tasks.failIfLeased({ taskId: bad.id, leaseToken: bad.leaseToken, error: { message: "no", retryable: false}, now: ctx.clock.now() });
    const [a, b] = await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "a", dependsOn: [bad.id] },
      { ref: "b", persona: "worker", title: "b", dependsOn: ["a"] },
    ]);
    expect((await ctx.store.tasks.get({ taskId: a! })).status).toBe("blocked");
    expect((await ctx.store.tasks.get({ taskId: b! })).status).toBe("blocked");
  });

  it("rule 1: an idempotency key seen before returns the existing task and writes nothing", async () => {
    const ctx = get();
    const first = await enqueueOne(ctx, { idempotencyKey: "k-1" });
    const before = await snapshot(ctx);
    const again = await enqueueOne(ctx, { title: "same again", idempotencyKey: "k-1" });
    expect(again).toBe(first);
    expect(await snapshot(ctx)).toEqual(before);
  });

  it("rule 1: a batch task depending on an idempotent hit that already completed is pending, not stuck waiting", async () => {
    const ctx = get();
    await enqueueOne(ctx, { idempotencyKey: "setup" });
    const setup = await claimOne(ctx);
    await complete(ctx, setup);
    // The dependent comes first in the batch, so its state is worked out before the hit's.
    const [next, hit] = await enqueue(ctx, [
      { persona: "reviewer", title: "after setup", dependsOn: ["setup"] },
      { ref: "setup", persona: "worker", title: "setup", idempotencyKey: "setup" },
    ]);
    expect(hit).toBe(setup.id);
    const task = await ctx.store.tasks.get({ taskId: next! });
    expect(task.status).toBe("pending");
    expect(task.unmetDependencies).toBe(0);
    expect(task.dependsOn).toEqual([setup.id]);
  });

  it("rule 1: two tasks of one batch with the same idempotency key are refused and nothing is written", async () => {
    const ctx = get();
    await expectRefused(
      ctx,
      () =>
        enqueue(ctx, [
          { persona: "worker", title: "a", idempotencyKey: "dup" },
          { persona: "worker", title: "b", idempotencyKey: "dup" },
        ]),
      "VALIDATION",
      ["tasks[1].idempotencyKey", "tasks[0]"],
    );
  });

  it("rule 1: a batch under a parent that does not exist writes nothing", async () => {
    const ctx = get();
    await expectRefused(ctx, () => enqueue(ctx, [{ persona: "worker", title: "a" }], { parentId: 424_242 }), "TASK_NOT_FOUND", [
      "parentId",
      "424242",
    ]);
  });

  it("rule 1: task:enqueued is emitted after the commit with the number of ready tasks", async () => {
    const ctx = get();
    const seen = waitFor(ctx.store.events, "task:enqueued");
    const ids = await enqueue(ctx, [
      { ref: "a", persona: "worker", title: "a" },
      { persona: "worker", title: "b", dependsOn: ["a"] },
    ]);
    const event = await seen;
    expect(event.ids).toEqual(ids);
    expect(event.ready).toBe(1);
  });
}
