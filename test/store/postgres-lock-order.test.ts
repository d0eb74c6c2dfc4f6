import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore, type LeaseRef, type Store } from "../../src/store/index.js";
import { useAdmin, usePostgres } from "../helpers/postgres.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";

/**
 * Row locks on PostgreSQL (issue 19; docs/ARCHITECTURE.md, "PostgreSQL and beyond one
 * machine"). A supervisor's lease renewal, its start batch, its settlement batch and another
 * host's reap lock several task_status rows each, on separate connections at the same time.
 * Two of them taking the same rows in different orders deadlock, and PostgreSQL breaks a
 * deadlock only after deadlock_timeout (1 s); a renewal that queues behind a long settlement
 * waits as long. Either way the crash suite on PostgreSQL saw renewals silent for a whole
 * 500 ms lease, the supervisor stop claiming, and ready tasks wait beside free slots (stalls).
 * So the renewal never waits for a task row (it skips a held one until its next round), and
 * the others take their rows in task id order. The deadlock tests build the one interleaving
 * that deadlocks when one side locks in another order: a third connection holds one row, both
 * sides queue behind it (each checked waiting in pg_stat_activity), the row is released, and
 * both must commit without a deadlock being detected (no db:busy-retry: the store reruns a
 * transaction chosen as a deadlock's victim) and with the outcome each test states.
 */
const server = await usePostgres();

describe.skipIf(!server.available)("postgres: renewals skip held task rows, other transactions lock them in task id order", () => {
  const admin = useAdmin(server);
  let blocker: pg.Client;
  let store: Store;
  let url = "";
  let schema = "";
  let n = 0;
  let mono = 0;
  const reruns: number[] = [];
  const opened: Store[] = [];
  beforeEach(async () => {
    schema = `lockorder${++n}`;
    url = await admin.schema(schema);
    reruns.length = 0;
    mono = 0;
    store = await open();
    await syncTestPersonas(store, T0);
    await store.agents.register({ id: "host-a", name: "host-a", kind: "supervisor", heartbeatTimeoutMs: 30_000, now: T0 });
    blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
  });
  afterEach(async () => {
    await blocker?.end();
    for (const s of opened.splice(0)) await s.close();
  });

  /** A store on this test's schema, its deadlock reruns counted, on the test's monotonic clock (for the judge). */
  async function open(): Promise<Store> {
    const s = await openStore({ path: url, now: T0, monotonic: () => mono });
    s.events.on("db:busy-retry", (e) => reruns.push(e.attempt));
    opened.push(s);
    return s;
  }

  /**
   * Two tasks claimed by host-a, returned as [lower id, higher id]. The higher id has the higher
   * priority and is claimed first, so its row comes first in every physical order (the heap, the
   * assigned-agent index): an order other than the task id's, which no statement may follow.
   */
  async function twoLeases(): Promise<[LeaseRef, LeaseRef]> {
    await store.tasks.enqueue({ tasks: [{ persona: "worker", title: "a" }, { persona: "worker", title: "b", priority: 1 }], now: T0 });
    const claimed = [];
    for (let i = 0; i < 2; i++) claimed.push(...(await store.tasks.claim({ persona: "worker", agentId: "host-a", limit: 1, now: T0 })));
    expect(claimed.map((c) => c.title)).toEqual(["b", "a"]);
    const [b, a] = claimed.map((c) => ({ taskId: c.id, leaseToken: c.leaseToken })) as [LeaseRef, LeaseRef];
    expect(a.taskId).toBeLessThan(b.taskId);
    return [a, b];
  }

  async function hold(taskId: number): Promise<void> {
    await blocker.query("BEGIN");
    await blocker.query("SELECT 1 FROM task_status WHERE task_id = $1 FOR UPDATE", [taskId]);
  }

  /** Resolves once `count` sessions of this database wait for a lock (polled: the waits are inside the server). */
  async function waiting(count: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { rows } = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
      if (rows[0]!.n >= count) return;
      if (Date.now() > deadline) throw new Error(`expected ${count} sessions waiting for a lock, saw ${rows[0]!.n}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  it("a renewal never waits for a lease row another transaction holds: it renews the rest, and that one next round", async () => {
    const [a, b] = await twoLeases();
    await hold(a.taskId);
    const renewing = store.agents.heartbeat({ agentId: "host-a", now: T0 + 10, leases: [b, a] });
    // A renewal that queued behind the held row would show as a session waiting for a lock.
    const renewal = await Promise.race([
      renewing,
      waiting(1).then(() => {
        throw new Error("the renewal waits for the held row");
      }),
    ]);
    expect(renewal.renewed).toEqual([b]);
    expect(renewal.lost).toEqual([]);
    await blocker.query("COMMIT");
    const next = await store.agents.heartbeat({ agentId: "host-a", now: T0 + 20, leases: [b, a] });
    expect(next.renewed.map((l) => l.taskId).sort()).toEqual([a.taskId, b.taskId].sort());
    expect(reruns).toEqual([]);
  });

  it("a renewal reports a lease it finds settled as lost, and one it finds held as neither", async () => {
    const [a, b] = await twoLeases();
    await store.tasks.settle({ settlements: [{ kind: "complete", ...a, result: { ok: true } }], now: T0 + 5 });
    await hold(b.taskId);
    const renewal = await store.agents.heartbeat({ agentId: "host-a", now: T0 + 10, leases: [a, b] });
    expect(renewal).toEqual({ agentActive: true, renewed: [], lost: [a] });
    await blocker.query("COMMIT");
  });

  it("a start batch queued behind a settlement of the same leases commits after it, without a deadlock", async () => {
    const [a, b] = await twoLeases();
    await hold(a.taskId);
    const settling = store.tasks.settle({ settlements: [a, b].map((l) => ({ kind: "complete" as const, ...l, result: { ok: true } })), now: T0 + 10 });
    await waiting(1);
    const starting = store.tasks.start({ starts: [b, a], now: T0 + 20 });
    await waiting(2);
    await blocker.query("COMMIT");
    const [settled, started] = await Promise.all([settling, starting]);

    expect(reruns).toEqual([]);
    expect(settled.map((r) => (r.ok ? r.outcome : r.code))).toEqual(["completed", "completed"]);
    // The settlement went first: the start finds both leases ended.
    expect(started.map((r) => (r.ok ? "started" : r.code))).toEqual(["LEASE_LOST", "LEASE_LOST"]);
    for (const l of [a, b]) expect((await store.tasks.get({ taskId: l.taskId }))?.status).toBe("completed");
  });

  it("a settlement of a completion and a failure locks both rows before either, so a start batch cannot cross it", async () => {
    const [a, b] = await twoLeases();
    await hold(b.taskId);
    const settling = store.tasks.settle({
      settlements: [
        { kind: "complete", ...b, result: { ok: true } },
        { kind: "fail", ...a, error: { message: "boom", code: "ADAPTER_FAILED", retryable: false } },
      ],
      now: T0 + 10,
    });
    await waiting(1);
    const starting = store.tasks.start({ starts: [a, b], now: T0 + 20 });
    await waiting(2);
    await blocker.query("COMMIT");
    const [settled, started] = await Promise.all([settling, starting]);

    expect(reruns).toEqual([]);
    expect(settled.map((r) => (r.ok ? r.outcome : r.code))).toEqual(["completed", "failed"]);
    expect(started.map((r) => (r.ok ? "started" : r.code))).toEqual(["LEASE_LOST", "LEASE_LOST"]);
    expect((await store.tasks.get({ taskId: a.taskId }))?.status).toBe("failed");
    expect((await store.tasks.get({ taskId: b.taskId }))?.status).toBe("completed");
  });

  it("another host's reap of silent leases and the holder's settlement of them never deadlock", async () => {
    const [a, b] = await twoLeases();
    // The lower id's stamp moves on, so the reaper (which judges by stamps) meets the higher id first.
    await store.agents.heartbeat({ agentId: "host-a", now: T0 + 5, leases: [a] });
    const reaper = await open();
    expect(await reaper.maintenance.reapExpired({ now: T0 + 6 })).toEqual({ retried: [], failed: [], expiredAgents: [] });
    mono += 31_000; // both stamps stood still for longer than their 30 s lease, on the reaper's clock
    await hold(b.taskId);
    const reaping = reaper.maintenance.reapExpired({ now: T0 + 31_000, random: () => 0.5 });
    await waiting(1);
    const settling = store.tasks.settle({ settlements: [a, b].map((l) => ({ kind: "complete" as const, ...l, result: { ok: true } })), now: T0 + 31_001 });
    await waiting(2);
    await blocker.query("COMMIT");
    const [reaped, settled] = await Promise.all([reaping, settling]);

    expect(reruns).toEqual([]);
    // Whichever went first, each task has exactly one outcome: reaped back to pending, or completed.
    const retried = reaped.retried.map((r) => r.taskId).sort();
    const outcomes = settled.map((r) => (r.ok ? r.outcome : r.code));
    const completed = [a, b].filter((_, i) => outcomes[i] === "completed").map((l) => l.taskId);
    expect([...retried, ...completed].sort()).toEqual([a.taskId, b.taskId].sort());
    for (const l of [a, b]) expect((await store.tasks.get({ taskId: l.taskId }))?.status).toBe(retried.includes(l.taskId) ? "pending" : "completed");
  });
});
