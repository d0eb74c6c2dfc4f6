import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openStore, type LeaseRef, type Store } from "../../src/store/index.js";
import { usePostgres } from "../helpers/postgres.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";

/**
 * Row locks in task id order (issue 19; docs/ARCHITECTURE.md, "PostgreSQL and beyond one
 * machine"). A supervisor's lease renewal, its start batch, its settlement batch and another
 * host's reap lock several task_status rows each, on separate connections at the same time.
 * Two of them taking the same rows in different orders deadlock, and PostgreSQL breaks a
 * deadlock only after deadlock_timeout (1 s): the crash suite on PostgreSQL saw renewals
 * silent for a whole 500 ms lease, the supervisor stop claiming, and ready tasks wait beside
 * free slots (stalls). Each test below builds the one interleaving that deadlocks when one
 * side locks in another order: a third connection holds one row, both sides queue behind it
 * (each checked waiting in pg_stat_activity), the row is released, and both must commit
 * without a deadlock being detected (no db:busy-retry: the store reruns a transaction chosen
 * as a deadlock's victim) and with the outcome each test states.
 */
const server = await usePostgres();

describe.skipIf(!server.available)("postgres: transactions lock task rows in task id order", () => {
  let admin: pg.Client;
  let blocker: pg.Client;
  let store: Store;
  let url = "";
  let schema = "";
  let n = 0;
  let mono = 0;
  const reruns: number[] = [];
  const opened: Store[] = [];

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: server.url() });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
  });
  beforeEach(async () => {
    schema = `lockorder${++n}`;
    await admin.query(`CREATE SCHEMA ${schema}`);
    const u = new URL(server.url());
    u.searchParams.set("options", `-c search_path=${schema}`);
    url = u.toString();
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

  it("a renewal queued behind a settlement of the same leases commits after it, without a deadlock", async () => {
    const [a, b] = await twoLeases();
    await hold(a.taskId);
    const settling = store.tasks.settle({ settlements: [a, b].map((l) => ({ kind: "complete" as const, ...l, result: { ok: true } })), now: T0 + 10 });
    await waiting(1);
    const renewing = store.agents.heartbeat({ agentId: "host-a", now: T0 + 20, leases: [b, a] });
    await waiting(2);
    await blocker.query("COMMIT");
    const [settled, renewal] = await Promise.all([settling, renewing]);

    expect(reruns).toEqual([]);
    expect(settled.map((r) => r.outcome)).toEqual(["completed", "completed"]);
    // The settlement went first: the renewal finds both leases ended.
    expect(renewal.renewed).toEqual([]);
    expect(renewal.lost.map((l) => l.taskId).sort()).toEqual([a.taskId, b.taskId].sort());
    for (const l of [a, b]) expect((await store.tasks.get({ taskId: l.taskId }))?.status).toBe("completed");
  });

  it("a start batch queued behind a renewal of the same leases commits after it, without a deadlock", async () => {
    const [a, b] = await twoLeases();
    await hold(a.taskId);
    const renewing = store.agents.heartbeat({ agentId: "host-a", now: T0 + 10, leases: [a, b] });
    await waiting(1);
    const starting = store.tasks.start({ starts: [b, a], now: T0 + 20 });
    await waiting(2);
    await blocker.query("COMMIT");
    const [renewal, started] = await Promise.all([renewing, starting]);

    expect(reruns).toEqual([]);
    expect(renewal.renewed.map((l) => l.taskId).sort()).toEqual([a.taskId, b.taskId].sort());
    expect(started).toEqual([{ ok: true }, { ok: true }]);
    for (const l of [a, b]) expect((await store.tasks.get({ taskId: l.taskId }))?.status).toBe("in_progress");
  });

  it("a settlement of a completion and a failure locks both rows before either, so a renewal cannot cross it", async () => {
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
    const renewing = store.agents.heartbeat({ agentId: "host-a", now: T0 + 20, leases: [a, b] });
    await waiting(2);
    await blocker.query("COMMIT");
    const [settled, renewal] = await Promise.all([settling, renewing]);

    expect(reruns).toEqual([]);
    expect(settled.map((r) => r.outcome)).toEqual(["completed", "failed"]);
    expect(renewal.renewed).toEqual([]);
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
    const completed = [a, b].filter((_, i) => settled[i]!.outcome === "completed").map((l) => l.taskId);
    expect([...retried, ...completed].sort()).toEqual([a.taskId, b.taskId].sort());
    for (const l of [a, b]) expect((await store.tasks.get({ taskId: l.taskId }))?.status).toBe(retried.includes(l.taskId) ? "pending" : "completed");
  });
});
