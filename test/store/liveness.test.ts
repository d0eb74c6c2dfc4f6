import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { BLOCKED_WRITE_MS, LivenessJudge } from "../../src/store/liveness.js";
import { openStore, type Store } from "../../src/store/index.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

/**
 * Liveness (docs/ARCHITECTURE.md, rule 14): a reaper declares a holder dead only
 * after the holder's renewal stamp stood still for a whole lease on the reaper's
 * own monotonic clock. Two processes' wall clocks are never compared.
 */
describe("liveness judge", () => {
  const lease = (stamp: number, leaseMs = 1_000) => ({ taskId: 1, leaseToken: "t", stamp, leaseMs });

  it("declares a lease dead only once its stamp stood still for the whole lease", () => {
    const clock = new ManualClock(0);
    const judge = new LivenessJudge(() => clock.now());
    expect(judge.observe([lease(5)], []).leases).toEqual([]);
    clock.advance(999);
    expect(judge.observe([lease(5)], []).leases).toEqual([]);
    clock.advance(1);
    expect(judge.observe([lease(5)], []).leases.map((s) => s.silentMs)).toEqual([1_000]);
  });

  it("starts the silence again whenever the stamp moves, whichever way", () => {
    const clock = new ManualClock(0);
    const judge = new LivenessJudge(() => clock.now());
    judge.observe([lease(5)], []);
    clock.advance(900);
    // A renewal by a holder whose clock is behind writes a smaller number than the
    // reaper would expect; only the change matters.
    expect(judge.observe([lease(4)], []).leases).toEqual([]);
    clock.advance(900);
    expect(judge.observe([lease(4)], []).leases).toEqual([]);
  });

  it("does not count time during which this process could not write", () => {
    const clock = new ManualClock(0);
    const judge = new LivenessJudge(() => clock.now());
    judge.observe([lease(5)], []);
    const started = clock.now();
    clock.advance(800); // a write of ours that waited 800 ms for the lock
    judge.noteWrite(started);
    clock.advance(199);
    expect(judge.observe([lease(5)], []).leases).toEqual([]);
    clock.advance(801);
    expect(judge.observe([lease(5)], []).leases).toHaveLength(1);
  });

  it("ignores short writes", () => {
    const clock = new ManualClock(0);
    const judge = new LivenessJudge(() => clock.now());
    judge.observe([lease(5)], []);
    const started = clock.now();
    clock.advance(BLOCKED_WRITE_MS - 1);
    judge.noteWrite(started);
    clock.advance(1_000 - BLOCKED_WRITE_MS + 1);
    expect(judge.observe([lease(5)], []).leases).toHaveLength(1);
  });

  it("keeps counting a lease's silence across an observation of the agents alone (agents.expireStale)", () => {
    const clock = new ManualClock(0);
    const judge = new LivenessJudge(() => clock.now());
    judge.observeLeases([lease(5)]);
    clock.advance(600);
    judge.observeAgents([{ agentId: "a", stamp: 7, timeoutMs: 500 }]);
    clock.advance(400);
    expect(judge.observeLeases([lease(5)]).map((s) => s.silentMs)).toEqual([1_000]);
  });

  it("gives an agent one millisecond beyond its timeout", () => {
    const clock = new ManualClock(0);
    const judge = new LivenessJudge(() => clock.now());
    const agent = { agentId: "a", stamp: 7, timeoutMs: 500 };
    judge.observe([], [agent]);
    clock.advance(500);
    expect(judge.observe([], [agent]).agents).toEqual([]);
    clock.advance(1);
    expect(judge.observe([], [agent]).agents).toHaveLength(1);
  });
});

describe("liveness across connections (two processes' clocks)", () => {
  let temp: TempDir | null = null;
  const stores: Store[] = [];

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    temp?.cleanup();
    temp = null;
  });

  async function open(options: { monotonic?: () => number; busyTimeoutMs?: number } = {}): Promise<{ store: Store; path: string }> {
    temp ??= makeTempDir("roster-liveness-");
    const path = temp.path("roster.db");
    const store = await openStore({ path, now: T0, ...options });
    stores.push(store);
    return { store, path };
  }

  it("a reaper whose clock is 30 s ahead never reaps a lease its holder keeps renewing, and reaps it a lease after the holder stops", async () => {
    const holderClock = new ManualClock(T0);
    const reaperClock = new ManualClock(T0 + 30_000); // wall clock 30 s ahead of the holder's
    const reaperMono = new ManualClock(0);
    const { store: holder } = await open({ monotonic: () => holderClock.now() });
    const { store: reaper } = await open({ monotonic: () => reaperMono.now() });
    await syncTestPersonas(holder, holderClock.now());
    await holder.agents.register({ id: "holder", name: "holder", kind: "supervisor", heartbeatTimeoutMs: 3_000, now: holderClock.now() });
    await holder.tasks.enqueue({ tasks: [{ persona: "worker", title: "long" }], now: holderClock.now() });
    const [task] = await holder.tasks.claim({ persona: "worker", agentId: "holder", leaseMs: 3_000, now: holderClock.now() });
    // Ten leases' worth of time: the holder renews every lease/3, the reaper looks every 500 ms.
    for (let step = 0; step < 60; step++) {
      holderClock.advance(500);
      reaperClock.advance(500);
      reaperMono.advance(500);
      if (step % 2 === 1) await holder.agents.heartbeat({ agentId: "holder", now: holderClock.now() });
      const reaped = await reaper.maintenance.reapExpired({ now: reaperClock.now() });
      expect(reaped).toEqual({ retried: [], failed: [], expiredAgents: [] });
    }
    expect((await holder.tasks.get({ taskId: task!.id })).status).toBe("claimed");
    // The holder dies: a whole lease of the reaper's own time later, and not before, it is reaped.
    reaperMono.advance(2_999);
    expect((await reaper.maintenance.reapExpired({ now: reaperClock.now() })).retried).toEqual([]);
    reaperMono.advance(1_000);
    const reaped = await reaper.maintenance.reapExpired({ now: reaperClock.now() });
    expect(reaped.retried.map((r) => r.taskId)).toEqual([task!.id]);
    expect(reaped.expiredAgents).toEqual(["holder"]);
    expect((await holder.tasks.completeIfLeased({ taskId: task!.id, leaseToken: task!.leaseToken, now: holderClock.now() }))).toEqual({
      ok: false,
      code: "LEASE_LOST",
    });
  });

  it("a reaper that had to wait for the write lock judges nobody dead on that round: the holder may have been waiting too", async () => {
    const { store: holder, path } = await open({});
    const { store: reaper } = await open({ busyTimeoutMs: 20 });
    await syncTestPersonas(holder, T0);
    await holder.agents.register({ id: "holder", name: "holder", kind: "supervisor", heartbeatTimeoutMs: 60_000, now: T0 });
    await holder.tasks.enqueue({ tasks: [{ persona: "worker", title: "live" }], now: T0 });
    const [task] = await holder.tasks.claim({ persona: "worker", agentId: "holder", leaseMs: 300, now: T0 });
    await reaper.maintenance.reapExpired({ now: T0 }); // first sighting
    const locker = new Database(path);
    try {
      locker.exec("BEGIN IMMEDIATE"); // e.g. another process enqueuing 100,000 tasks
      await new Promise((r) => setTimeout(r, 400)); // past the lease: the holder's renewals are stuck behind the lock
      setTimeout(() => locker.exec("COMMIT"), 500);
      const reaped = await reaper.maintenance.reapExpired({ now: T0 });
      expect(reaped.retried).toEqual([]);
    } finally {
      if (locker.inTransaction) locker.exec("ROLLBACK");
      locker.close();
    }
    // The holder's renewal lands once the lock is gone; the lease lives on.
    await holder.agents.heartbeat({ agentId: "holder", now: T0 });
    expect((await reaper.maintenance.reapExpired({ now: T0 })).retried).toEqual([]);
    expect((await holder.tasks.get({ taskId: task!.id })).status).toBe("claimed");
    // And without renewals it is reaped a lease later.
    await new Promise((r) => setTimeout(r, 350));
    expect((await reaper.maintenance.reapExpired({ now: T0 })).retried.map((r) => r.taskId)).toEqual([task!.id]);
  });
});
