import { expect, it } from "vitest";
import type { ClaimedTask } from "../../../src/store/index.js";
import { collect } from "../../helpers/events.js";
import { TEST_LEASE_MS } from "../../helpers/personas.js";
import { claimOne, enqueue, enqueueOne, fixedRandom, snapshot, type Ctx, type GetCtx } from "./support.js";

/**
 * A task that agent-a claimed, lost (lease expired and reaped) and agent-b then
 * claimed again: agent-a's token is stale, agent-b's is current.
 */
async function staleLease(ctx: Ctx): Promise<{ stale: ClaimedTask; current: ClaimedTask }> {
  for (const id of ["agent-a", "agent-b"]) {
    await ctx.store.agents.register({ id, name: id, kind: "supervisor", heartbeatTimeoutMs: 3_600_000, now: ctx.clock.now() });
  }
  await enqueueOne(ctx);
  const stale = await claimOne(ctx, "worker", "agent-a");
  ctx.clock.advance(TEST_LEASE_MS + 1);
  const reaped = await ctx.store.maintenance.reapExpired({ now: ctx.clock.now(), random: fixedRandom(0) });
  expect(reaped.retried.map((r) => r.taskId)).toEqual([stale.id]);
  ctx.clock.advance(1_000);
  const current = await claimOne(ctx, "worker", "agent-b");
  expect(current.id).toBe(stale.id);
  return { stale, current };
}

type StaleOp = (ctx: Ctx, stale: ClaimedTask) => Promise<unknown>;

const STALE_OPS: Array<[string, StaleOp, unknown]> = [
  [
    "complete",
    (ctx, t) => ctx.store.tasks.completeIfLeased({ taskId: t.id, leaseToken: t.leaseToken, result: { late: true }, now: ctx.clock.now() }),
    { ok: false, code: "LEASE_LOST" },
  ],
  [
    "fail",
    (ctx, t) => ctx.store.tasks.failIfLeased({ taskId: t.id, leaseToken: t.leaseToken, error: { message: "late" }, now: ctx.clock.now() }),
    { ok: false, code: "LEASE_LOST" },
  ],
  [
    "progress",
    (ctx, t) => ctx.store.tasks.progressIfLeased({ taskId: t.id, leaseToken: t.leaseToken, fraction: 0.5, message: "late", now: ctx.clock.now() }),
    { ok: false, code: "LEASE_LOST" },
  ],
  ["start", (ctx, t) => ctx.store.tasks.startIfLeased({ taskId: t.id, leaseToken: t.leaseToken, now: ctx.clock.now() }), { ok: false, code: "LEASE_LOST" }],
  ["release", (ctx, t) => ctx.store.tasks.releaseIfLeased({ taskId: t.id, leaseToken: t.leaseToken, now: ctx.clock.now() }), { ok: false, code: "LEASE_LOST" }],
  [
    "start",
    (ctx, t) => ctx.store.tasks.start({ starts: [{ taskId: t.id, leaseToken: t.leaseToken }], now: ctx.clock.now() }),
    [{ ok: false, code: "LEASE_LOST" }],
  ],
  [
    "settle",
    (ctx, t) =>
      ctx.store.tasks.settle({ settlements: [{ kind: "complete", taskId: t.id, leaseToken: t.leaseToken, result: 1 }], now: ctx.clock.now() }),
    [{ ok: false, code: "LEASE_LOST" }],
  ],
];

/** docs/ARCHITECTURE.md rule 4: fenced writes succeed only while the caller's lease is current. */
export function fencingRules(get: GetCtx): void {
  for (const [name, op, expected] of STALE_OPS) {
    it(`rule 4: ${name} with a stale lease token returns LEASE_LOST and changes nothing`, async () => {
      const ctx = get();
      const { stale, current } = await staleLease(ctx);
      const lost = collect(ctx.store.events, "lease:lost");
      const before = await snapshot(ctx, [stale.id]);
      expect(await op(ctx, stale)).toEqual(expected);
      expect(await snapshot(ctx, [stale.id])).toEqual(before);
      lost.stop();
      expect(lost.items.map((e) => e.taskId)).toEqual([stale.id]);
      // The current holder is unaffected.
      expect(await ctx.store.tasks.startIfLeased({ taskId: current.id, leaseToken: current.leaseToken, now: ctx.clock.now() })).toEqual({ ok: true });
    });
  }

  it("rule 4: heartbeat with a stale lease token reports it lost, renews nothing and changes no task", async () => {
    const ctx = get();
    const { stale, current } = await staleLease(ctx);
    ctx.clock.advance(5_000);
    const before = await snapshot(ctx, [stale.id]);
    const result = await ctx.store.agents.heartbeat({ agentId: "agent-a", leases: [{ taskId: stale.id, leaseToken: stale.leaseToken }], now: ctx.clock.now() });
    expect(result).toEqual({ agentActive: true, renewed: [], lost: [{ taskId: stale.id, leaseToken: stale.leaseToken }] });
    expect(await snapshot(ctx, [stale.id])).toEqual(before);
    expect((await ctx.store.tasks.get({ taskId: current.id })).leaseExpiresAt).toBe(current.leaseExpiresAt);
  });

  it("rule 4: a wrong token is refused while the real lease is current", async () => {
    const ctx = get();
    await enqueueOne(ctx);
    const task = await claimOne(ctx);
    const before = await snapshot(ctx, [task.id]);
    const forged = `${task.leaseToken}x`;
    expect(await ctx.store.tasks.completeIfLeased({ taskId: task.id, leaseToken: forged, now: ctx.clock.now() })).toEqual({ ok: false, code: "LEASE_LOST" });
    expect(await ctx.store.tasks.completeIfLeased({ taskId: task.id + 1, leaseToken: task.leaseToken, now: ctx.clock.now() })).toEqual({
      ok: false,
      code: "LEASE_LOST",
    });
    expect(await snapshot(ctx, [task.id])).toEqual(before);
  });

  it("rule 14: a lease stays current until it is reaped, whatever the writer's clock says", async () => {
    const ctx = get();
    await enqueue(ctx, [
      { persona: "worker", title: "ahead" },
      { persona: "worker", title: "behind" },
    ]);
    const [ahead, behind] = await ctx.store.tasks.claim({ persona: "worker", agentId: "agent-a", limit: 2, now: ctx.clock.now() });
    // A holder whose clock is an hour ahead of (or behind) the claimer's still holds its lease.
    expect(await ctx.store.tasks.completeIfLeased({ taskId: ahead!.id, leaseToken: ahead!.leaseToken, now: ctx.clock.now() + 3_600_000 })).toMatchObject({ ok: true });
    expect(await ctx.store.tasks.completeIfLeased({ taskId: behind!.id, leaseToken: behind!.leaseToken, now: ctx.clock.now() - 3_600_000 })).toMatchObject({ ok: true });
  });

  it("rule 14: a renewal moves the lease's stamp forward even when the renewer's clock stepped back", async () => {
    const ctx = get();
    await ctx.store.agents.register({ id: "agent-a", name: "a", kind: "supervisor", heartbeatTimeoutMs: 60_000, now: ctx.clock.now() });
    await enqueueOne(ctx);
    const task = await claimOne(ctx, "worker", "agent-a");
    const stamps: number[] = [];
    for (const offset of [0, -60_000, -120_000]) {
      await ctx.store.agents.heartbeat({ agentId: "agent-a", now: ctx.clock.now() + offset });
      stamps.push((await ctx.store.tasks.get({ taskId: task.id })).leaseExpiresAt!);
    }
    expect(stamps[1]).toBeGreaterThan(stamps[0]!);
    expect(stamps[2]).toBeGreaterThan(stamps[1]!);
  });

  it("rule 4: cancelling a claimed task fences out its worker", async () => {
    const ctx = get();
    await enqueueOne(ctx);
    const task = await claimOne(ctx);
    await ctx.store.tasks.cancel({ taskId: task.id, now: ctx.clock.now() });
    expect(await ctx.store.tasks.completeIfLeased({ taskId: task.id, leaseToken: task.leaseToken, now: ctx.clock.now() })).toEqual({
      ok: false,
      code: "LEASE_LOST",
    });
    expect((await ctx.store.tasks.get({ taskId: task.id })).status).toBe("cancelled");
  });

  it("rule 4: a completed task cannot be completed twice with its old token", async () => {
    const ctx = get();
    await enqueueOne(ctx);
    const task = await claimOne(ctx);
    expect(await ctx.store.tasks.completeIfLeased({ taskId: task.id, leaseToken: task.leaseToken, result: 1, now: ctx.clock.now() })).toMatchObject({ ok: true });
    const before = await snapshot(ctx, [task.id]);
    expect(await ctx.store.tasks.completeIfLeased({ taskId: task.id, leaseToken: task.leaseToken, result: 2, now: ctx.clock.now() })).toEqual({
      ok: false,
      code: "LEASE_LOST",
    });
    expect(await snapshot(ctx, [task.id])).toEqual(before);
  });

  it("rule 4: start starts every task whose lease is current in one call and reports the stale one lost", async () => {
    const ctx = get();
    const { stale, current } = await staleLease(ctx);
    await ctx.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "second" }], now: ctx.clock.now() });
    const other = await claimOne(ctx, "worker", "agent-b");
    const results = await ctx.store.tasks.start({
      starts: [current, stale, other].map((t) => ({ taskId: t.id, leaseToken: t.leaseToken })),
      now: ctx.clock.now(),
    });
    expect(results).toEqual([{ ok: true }, { ok: false, code: "LEASE_LOST" }, { ok: true }]);
    for (const id of [current.id, other.id]) {
      expect((await ctx.store.tasks.get({ taskId: id })).status).toBe("in_progress");
      expect((await ctx.store.tasks.events({ taskId: id, limit: 0 })).filter((e) => e.type === "task:started")).toHaveLength(1);
    }
    expect(await ctx.store.tasks.start({ starts: [], now: ctx.clock.now() })).toEqual([]);
  });
}
