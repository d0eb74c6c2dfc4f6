import { mkdirSync } from "node:fs";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { silentLogger } from "../../src/logging/logger.js";
import { openStore, type Store } from "../../src/store/index.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { Supervisor } from "../../src/supervisor/supervisor.js";
import { useAdmin, usePostgres } from "../helpers/postgres.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { copyFixture, next, writePersonas } from "../supervisor/helpers.js";

/**
 * hasExternalChanges on PostgreSQL (the supervisor's fallback poll, src/supervisor/waker.ts):
 * the store's own committed writes are not outside changes (as SQLite's data_version
 * ignores the connection's own), another process's write is, even one whose event id is
 * below ours but which commits after ours, and a cancel from another process reaches a
 * running supervisor through the poll alone (its LISTEN watch switched off). With its watch
 * on, an idle supervisor is not woken by other hosts' writes that bring it no work.
 */
const server = await usePostgres();

describe.skipIf(!server.available)("postgres: hasExternalChanges tells the store's own writes from others'", () => {
  const admin = useAdmin(server);
  let url: string;
  const stores: Store[] = [];
  beforeAll(async () => {
    url = await admin.schema("x1");
  });
  afterAll(async () => {
    for (const store of stores) await store.close();
  });

  async function open(): Promise<Store> {
    const store = await openStore({ path: url, now: T0 });
    stores.push(store);
    return store;
  }

  it("its own enqueues, claims, starts, settles and cancels are not outside changes; another store's enqueue is, once", async () => {
    const a = await open();
    const b = await open();
    await syncTestPersonas(a, T0);
    await a.hasExternalChanges();
    const { ids } = await a.tasks.enqueue({ tasks: [1, 2, 3].map((i) => ({ persona: "worker", title: `own ${i}` })), now: T0 });
    expect(await a.hasExternalChanges()).toBe(false);
    // Both claim paths: the one-statement claim, and a claim by id (a transaction).
    const claimed = await a.tasks.claim({ persona: "worker", agentId: "a", limit: 2, now: T0 });
    const byId = await a.tasks.claim({ agentId: "a", taskId: ids[2]!, now: T0 });
    expect([...claimed, ...byId].map((t) => t.id).sort()).toEqual([...ids].sort());
    await a.tasks.start({ starts: claimed.map((t) => ({ taskId: t.id, leaseToken: t.leaseToken })), now: T0 });
    expect(await a.hasExternalChanges()).toBe(false);
    // The one-statement batch completion.
    const settled = await a.tasks.settle({
      settlements: [
        { kind: "complete", taskId: claimed[0]!.id, leaseToken: claimed[0]!.leaseToken, result: { ok: 1 } },
        { kind: "complete", taskId: claimed[1]!.id, leaseToken: claimed[1]!.leaseToken, result: { ok: 2 } },
      ],
      now: T0 + 1,
    });
    expect(settled.map((r) => (r.ok ? r.outcome : r.code))).toEqual(["completed", "completed"]);
    await a.tasks.cancel({ taskId: ids[2]!, by: "a", now: T0 + 2 });
    expect(await a.hasExternalChanges()).toBe(false);
    expect((await a.tasks.get({ taskId: ids[2]! })).status).toBe("cancelled");

    await b.tasks.enqueue({ tasks: [{ persona: "worker", title: "from another host" }], now: T0 + 3 });
    expect(await a.hasExternalChanges()).toBe(true);
    expect(await a.hasExternalChanges()).toBe(false);
    // b saw a's writes (made before its first look? no: after its open) as outside changes.
    expect(await b.hasExternalChanges()).toBe(true);
    expect(await b.hasExternalChanges()).toBe(false);
  });

  it("another process's write that took a lower event id than ours but commits after ours is still seen", async () => {
    const a = await open();
    await syncTestPersonas(a, T0);
    const { ids } = await a.tasks.enqueue({ tasks: [{ persona: "worker", title: "target" }], now: T0 });
    await a.hasExternalChanges();
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    try {
      // Another process's transaction takes its event id now (as a cancel's audit row would) and commits later.
      await other.query("BEGIN");
      const { rows } = await other.query<{ id: string }>("INSERT INTO task_events (task_id, type, at, data) VALUES ($1, 'task:note', $2, '{}') RETURNING id", [ids[0], T0 + 1]);
      const foreignId = Number(rows[0]!.id);
      // Meanwhile this store writes and commits events with higher ids.
      await a.tasks.enqueue({ tasks: [{ persona: "worker", title: "own, later id" }], now: T0 + 2 });
      const { rows: max } = await other.query<{ id: string }>("SELECT max(id) AS id FROM task_events");
      expect(Number(max[0]!.id)).toBeGreaterThan(foreignId);
      expect(await a.hasExternalChanges()).toBe(false);
      await other.query("COMMIT");
    } finally {
      await other.end();
    }
    // max(id) did not move at that commit; the foreign change is seen all the same.
    expect(await a.hasExternalChanges()).toBe(true);
    expect(await a.hasExternalChanges()).toBe(false);
  });
});

describe.skipIf(!server.available)("postgres: a running supervisor and other processes' writes", () => {
  const admin = useAdmin(server);
  let temp: TempDir | null = null;
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    temp?.cleanup();
    temp = null;
  });

  it("a cancel from another process reaches it by the poll alone: the attempt is aborted well before its lease renewal and the cancel recorded", async () => {
    const url = await admin.schema("x2");
    temp = makeTempDir("roster-pgpoll-");
    const personasDir = temp.path("personas");
    mkdirSync(personasDir);
    // A long lease: its renewal (every leaseMs/3 = 40 s) is far from the bound below.
    writePersonas(personasDir, [{ id: "waiter", adapter: { kind: "module", path: "./adapter-thread.mjs" }, leaseMs: 120_000, retry: { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 } }]);
    copyFixture(personasDir, "adapter-thread.mjs");
    const store = await openStore({ path: url });
    cleanups.push(() => store.close());
    const personas = await syncPersonas(store, personasDir, Date.now());
    // The supervisor's store without its LISTEN watch: only the 250 ms poll of hasExternalChanges can hear the cancel.
    const quiet = new Proxy(store, {
      get(target, key) {
        if (key === "watchExternalChanges") return () => () => {};
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const config = loadConfig({ dbPath: url, personasDir, logLevel: "silent", threads: 2, pollIntervalMs: 250, reapIntervalMs: 1_000, shutdownGraceMs: 2_000 } as never, {});
    const supervisor = new Supervisor({ store: quiet, personas, config, logger: silentLogger(), abortGraceMs: 300 });
    cleanups.push(() => supervisor.stop("test over"));
    const { ids } = await store.tasks.enqueue({ tasks: [{ persona: "waiter", title: "long", payload: { ms: 50_000 } }], now: Date.now() });
    const started = next(supervisor.events, "task:run-started");
    await supervisor.start();
    await started;
    // Let a few polls pass over the supervisor's own writes (claim, start) first.
    await new Promise((r) => setTimeout(r, 600));
    const aborting = next(supervisor.events, "task:aborting", () => true, 20_000);
    const other = await openStore({ path: url }); // as `roster cancel` on another host
    const cancelledAt = Date.now();
    try {
      await other.tasks.cancel({ taskId: ids[0]!, by: "cli", now: Date.now() });
    } finally {
      await other.close();
    }
    expect((await aborting).reason).toBe("cancelled");
    // The renewal would notice it only after 40 s; the poll within a few of its 250 ms turns (room for a loaded machine).
    expect(Date.now() - cancelledAt).toBeLessThan(20_000);
    expect((await store.tasks.get({ taskId: ids[0]! })).status).toBe("cancelled");
  });

  // With its watch on: an idle supervisor is not woken by other hosts' writes that bring it no work.
  it("claims nothing while another host heartbeats, and still runs that host's enqueue", async () => {
    const url = await admin.schema("x3");
    temp = makeTempDir("roster-pgidle-");
    const personasDir = temp.path("personas");
    mkdirSync(personasDir);
    writePersonas(personasDir, [
      { id: "first", adapter: { kind: "echo" } },
      { id: "second", adapter: { kind: "echo" } },
    ]);
    const claims: number[] = [];
    const store = await openStore({ path: url, onTransaction: (name) => (name === "tasks.claim" ? claims.push(Date.now()) : undefined) });
    cleanups.push(() => store.close());
    const personas = await syncPersonas(store, personasDir, Date.now());
    const config = loadConfig({ dbPath: url, personasDir, logLevel: "silent", threads: 1, pollIntervalMs: 100 } as never, {});
    const supervisor = new Supervisor({ store, personas, config, logger: silentLogger() });
    cleanups.push(() => supervisor.stop("test over"));
    await supervisor.start();
    // Its LISTEN is up (its watch's first yes has woken it once).
    for (;;) {
      const { rows } = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'LISTEN "roster:x3"'`);
      if (rows[0]!.n === 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 500));
    const other = await openStore({ path: url }); // another host: its supervisor's agent heartbeats
    cleanups.push(() => other.close());
    const agent = await other.agents.register({ name: "another host", kind: "supervisor", heartbeatTimeoutMs: 60_000, now: Date.now() });
    const from = Date.now();
    for (let i = 0; i < 40; i++) {
      await other.agents.heartbeat({ agentId: agent.id, now: Date.now() });
      await new Promise((r) => setTimeout(r, 50));
    }
    // Forty commits by another process over twenty of its polls: none of them readied work, ended a lease or
    // cancelled, so none is a reason to claim (each used to wake both personas' producers).
    expect(claims.filter((at) => at >= from)).toEqual([]);
    const done = next(supervisor.events, "task:run-finished", () => true, 20_000);
    const { ids } = await other.tasks.enqueue({ tasks: [{ persona: "second", title: "from another host" }], now: Date.now() });
    expect((await done).taskId).toBe(ids[0]);
  });
});
