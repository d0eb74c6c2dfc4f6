import { mkdirSync } from "node:fs";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { silentLogger } from "../../src/logging/logger.js";
import { openStore, type SettlementResult, type Store, type TaskRecord } from "../../src/store/index.js";
import { syncPersonas } from "../../src/supervisor/personas.js";
import { Supervisor } from "../../src/supervisor/supervisor.js";
import { collect, waitFor } from "../helpers/events.js";
import { usePostgres } from "../helpers/postgres.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { copyFixture, writePersonas, type TestPersona } from "./helpers.js";

/**
 * Claims overlap settlements (issues 14 and 19): a slot is free at its attempt's
 * outcome, not at the commit of its settlement, so the supervisor claims while the
 * completer's settle transaction is in flight. The settling task is still leased in
 * the store until that commit, so the store's own checks (a concurrency key counts
 * claimed and in-progress rows) keep their limits, and a persona's concurrency counts
 * the adapters running in this supervisor, which the finished one no longer is.
 *
 * On SQLite a write transaction excludes every other, so a settle "held open" is a
 * settle call held back before its transaction (the store underneath is real); on
 * PostgreSQL the settle's transaction is really open, waiting for a row lock another
 * connection holds.
 */
const server = await usePostgres();

let temp: TempDir | null = null;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  temp?.cleanup();
  temp = null;
});

/** The real store, its settle calls (settle, settleAndClaim) held until `release()` while `hold` is on. */
interface Held {
  store: Store;
  /** Settle calls begun so far, with the task ids of each. */
  calls: number[][];
  /** Task ids whose settlement has committed. */
  committed: Set<number>;
  hold(): void;
  release(): void;
  /** Resolves once a settle call naming `taskId` has begun. */
  settling(taskId: number): Promise<void>;
  /** Resolves once any settle call has begun. */
  settlingAny(): Promise<void>;
}

function holdSettles(store: Store): Held {
  let gate: Promise<void> | null = null;
  let open = (): void => {};
  const calls: number[][] = [];
  const committed = new Set<number>();
  const waiters: Array<{ taskId: number; resolve: () => void }> = [];
  /** Both settle paths (settleAndClaim: the settle with the next claims in its transaction) are held alike. */
  const heldCall =
    <P extends { settlements: Array<{ taskId: number }> }, R>(call: (params: P) => Promise<R>) =>
    async (params: P): Promise<R> => {
      const ids = params.settlements.map((s) => s.taskId);
      calls.push(ids);
      for (const w of waiters.filter((w) => w.taskId === -1 || ids.includes(w.taskId))) w.resolve();
      if (gate !== null) await gate;
      const results = await call(params);
      for (const id of ids) committed.add(id);
      return results;
    };
  const settle = heldCall((p: Parameters<Store["tasks"]["settle"]>[0]): Promise<SettlementResult[]> => store.tasks.settle(p));
  const settleAndClaim = store.tasks.settleAndClaim === undefined ? undefined : heldCall(store.tasks.settleAndClaim.bind(store.tasks));
  const tasks = new Proxy(store.tasks, {
    get: (target, key) => (key === "settle" ? settle : key === "settleAndClaim" ? settleAndClaim : Reflect.get(target, key)),
  });
  const held = new Proxy(store, {
    get: (target, key) => {
      if (key === "tasks") return tasks;
      const value = Reflect.get(target, key) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    store: held,
    calls,
    committed,
    hold: () => {
      gate = new Promise((resolve) => (open = resolve));
    },
    release: () => {
      gate = null;
      open();
    },
    settlingAny: () => (calls.length > 0 ? Promise.resolve() : new Promise((resolve) => waiters.push({ taskId: -1, resolve }))),
    settling: (taskId) => (calls.some((ids) => ids.includes(taskId)) ? Promise.resolve() : new Promise((resolve) => waiters.push({ taskId, resolve }))),
  };
}

async function setUp(personas: TestPersona[], capacity: number, dbUrl?: string): Promise<{ store: Store; held: Held; supervisor: Supervisor }> {
  temp = makeTempDir("roster-overlap-");
  const personasDir = temp.path("personas");
  mkdirSync(personasDir);
  writePersonas(personasDir, personas);
  copyFixture(personasDir, "adapter-interval.mjs");
  const dbPath = dbUrl ?? temp.path("roster.db");
  const config = loadConfig({ dbPath, personasDir, logLevel: "silent", threads: 2, pollIntervalMs: 20, reapIntervalMs: 100, shutdownGraceMs: 2_000, concurrency: capacity } as never, {});
  const store = await openStore({ path: dbPath });
  const loaded = await syncPersonas(store, personasDir, Date.now());
  const held = holdSettles(store);
  const supervisor = new Supervisor({ store: held.store, personas: loaded, config, logger: silentLogger(), abortGraceMs: 300, reloadPersonas: false });
  cleanups.push(async () => {
    held.release();
    await supervisor.stop("test over");
    await store.close();
  });
  return { store, held, supervisor };
}

const INTERVAL = { kind: "module", path: "./adapter-interval.mjs" };
const ONCE = { maxAttempts: 1 };

/** Most intervals open at once. */
function maxOverlap(intervals: Array<[number, number]>): number {
  const points = intervals.flatMap(([s, e]) => [[s, 1] as const, [e, -1] as const]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, d] of points) max = Math.max(max, (open += d));
  return max;
}

async function allDone(store: Store, ids: number[]): Promise<TaskRecord[]> {
  const tasks = await Promise.all(ids.map((taskId) => store.tasks.get({ taskId })));
  return tasks;
}

/** Resolves once every one of `ids` has completed (register before they can). */
function completed(store: Store, ids: readonly number[], timeoutMs = 30_000): Promise<void> {
  const left = new Set(ids);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`tasks ${[...left].join(", ")} did not complete within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = store.events.on("task:completed", (e) => {
      left.delete(e.taskId);
      if (left.size > 0) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

function claimedOnce(claims: { items: Array<{ tasks: Array<{ id: number }> }> }, id: number): number {
  return claims.items.flatMap((e) => e.tasks).filter((t) => t.id === id).length;
}

describe("supervisor: claims overlap settlements (SQLite)", () => {
  it("claims the next task while the settlement of the last has not committed (capacity 1)", async () => {
    const { store, held, supervisor } = await setUp([{ id: "work", adapter: { kind: "echo" }, concurrency: 4, retry: ONCE }], 1);
    const claims = collect(store.events, "task:claimed");
    const { ids } = await store.tasks.enqueue({ tasks: [0, 1, 2].map((i) => ({ persona: "work", title: `t${i}`, payload: { i } })), now: Date.now() });
    held.hold();
    const secondClaimed = waitFor(store.events, "task:claimed", (e) => e.tasks.some((t) => t.id === ids[1]), 30_000);
    await supervisor.start();
    await held.settling(ids[0]!);
    // The only slot came free at the outcome: the second task is claimed while the first's settle waits.
    await secondClaimed;
    expect(held.committed.size).toBe(0);
    expect(["claimed", "in_progress"]).toContain((await store.tasks.get({ taskId: ids[0]! })).status);
    const done = completed(store, ids);
    held.release();
    await done;
    const tasks = await allDone(store, ids);
    expect(tasks.map((t) => [t.status, t.attempts])).toEqual(ids.map(() => ["completed", 1]));
    for (const id of ids) expect(claimedOnce(claims, id)).toBe(1);
  });

  it("keeps a failed attempt's slot until its settlement commits, so a breaker or budget it closes is on before the next claim", async () => {
    const { store, held, supervisor } = await setUp([{ id: "work", adapter: { kind: "fail" }, concurrency: 4, retry: ONCE }], 1);
    const claims = collect(store.events, "task:claimed");
    const { ids } = await store.tasks.enqueue({ tasks: [0, 1].map((i) => ({ persona: "work", title: `t${i}` })), now: Date.now() });
    held.hold();
    await supervisor.start();
    await held.settling(ids[0]!);
    // The failure's settle waits; three poll ticks pass and nothing more is claimed: the slot is still held.
    let ticks = 0;
    await new Promise<void>((resolve) => {
      const off = supervisor.events.on("loop:tick", () => {
        if (++ticks < 3) return;
        off();
        resolve();
      });
    });
    expect(claims.items.flatMap((e) => e.tasks).map((t) => t.id)).toEqual([ids[0]]);
    const failed = new Promise<void>((resolve) => {
      const off = store.events.on("task:failed", (e) => {
        if (e.taskId !== ids[1]) return;
        off();
        resolve();
      });
    });
    held.release();
    await failed;
    const tasks = await allDone(store, ids);
    expect(tasks.map((t) => [t.status, t.attempts])).toEqual(ids.map(() => ["failed", 1]));
    // The second was claimed only after the first's failure committed.
    expect(tasks[1]!.claimedAt!).toBeGreaterThanOrEqual(tasks[0]!.finishedAt!);
  });

  it("keeps a persona's concurrency (the store counts a settling task as leased): none of its tasks is claimed while its slots' settlements wait, another persona's is", async () => {
    const { store, held, supervisor } = await setUp(
      [
        { id: "pair", adapter: INTERVAL, concurrency: 2, retry: ONCE },
        { id: "other", adapter: { kind: "echo" }, concurrency: 4, retry: ONCE },
      ],
      8,
    );
    const claims = collect(store.events, "task:claimed");
    const { ids } = await store.tasks.enqueue({ tasks: Array.from({ length: 4 }, (_, i) => ({ persona: "pair", title: `t${i}`, payload: { ms: 40 } })), now: Date.now() });
    held.hold();
    await supervisor.start();
    await held.settlingAny();
    // Slots are free (their outcomes are in), but the pair's two leases are still held until the commit.
    const otherClaimed = waitFor(store.events, "task:claimed", (e) => e.tasks.some((t) => t.persona === "other"), 30_000);
    const { ids: otherIds } = await store.tasks.enqueue({ tasks: [{ persona: "other", title: "o" }], now: Date.now() });
    await otherClaimed;
    expect(held.committed.size).toBe(0);
    expect(claims.items.flatMap((e) => e.tasks).filter((t) => t.persona === "pair")).toHaveLength(2);
    const all = [...ids, ...otherIds];
    const done = completed(store, all);
    held.release();
    await done;
    const tasks = await allDone(store, all);
    expect(tasks.map((t) => [t.status, t.attempts])).toEqual(all.map(() => ["completed", 1]));
    for (const id of all) expect(claimedOnce(claims, id)).toBe(1);
    const intervals = tasks.slice(0, 4).map((t) => {
      const r = t.result as { startedAt: number; endedAt: number };
      return [r.startedAt, r.endedAt] as [number, number];
    });
    expect(maxOverlap(intervals)).toBeLessThanOrEqual(2);
  });

  it("keeps a concurrency key's limit while its holder's settlement is uncommitted (the store still sees it leased)", async () => {
    const { store, held, supervisor } = await setUp([{ id: "work", adapter: { kind: "echo" }, concurrency: 4, retry: ONCE }], 4);
    const claims = collect(store.events, "task:claimed");
    const keyed = { concurrencyKey: "repo", concurrencyLimit: 1 };
    const { ids } = await store.tasks.enqueue({ tasks: ["a", "b"].map((title) => ({ persona: "work", title, policy: keyed })), now: Date.now() });
    const [a, b] = ids as [number, number];
    held.hold();
    await supervisor.start();
    await held.settling(a);
    // A task without the key, enqueued now, is claimed while a's settle waits; b, sharing a's key, is not.
    const cClaimed = waitFor(store.events, "task:claimed", (e) => e.tasks.length > 0 && e.tasks.every((t) => t.id !== b), 30_000);
    const { ids: cIds } = await store.tasks.enqueue({ tasks: [{ persona: "work", title: "c" }], now: Date.now() });
    const c = cIds[0]!;
    await cClaimed;
    // (c's own outcome queues behind a's held settle: the completer commits one batch at a time.)
    expect(held.committed.size).toBe(0);
    expect((await store.tasks.get({ taskId: b })).status).toBe("pending");
    const done = completed(store, [a, b, c]);
    held.release();
    await done;
    const [ta, tb, tc] = await allDone(store, [a, b, c]);
    expect([ta, tb, tc].map((t) => [t!.status, t!.attempts])).toEqual([
      ["completed", 1],
      ["completed", 1],
      ["completed", 1],
    ]);
    // b was claimed only after a's completion committed.
    expect(tb!.claimedAt!).toBeGreaterThanOrEqual(ta!.finishedAt!);
    for (const id of [a, b, c]) expect(claimedOnce(claims, id)).toBe(1);
  });

  it("a stopping supervisor commits every outcome it has, including those whose settlement was in flight", async () => {
    const { store, held, supervisor } = await setUp([{ id: "work", adapter: { kind: "echo" }, concurrency: 2, retry: ONCE }], 2);
    const { ids } = await store.tasks.enqueue({ tasks: [0, 1, 2, 3].map((i) => ({ persona: "work", title: `t${i}` })), now: Date.now() });
    held.hold();
    await supervisor.start();
    await held.settlingAny();
    const stopped = supervisor.stop("test stop");
    held.release();
    await stopped;
    const tasks = await allDone(store, ids);
    // Whatever finished was committed as completed; nothing is left leased; what never ran is pending, uncounted.
    for (const t of tasks) expect(["completed", "pending"]).toContain(t.status);
    expect(held.calls.length).toBeGreaterThan(0);
    for (const t of tasks) expect(t.attempts).toBe(t.status === "completed" ? 1 : 0);
    expect(held.calls.flat().every((id) => tasks.find((t) => t.id === id)!.status === "completed")).toBe(true);
  });
});

describe.skipIf(!server.available)("supervisor: claims overlap settlements (PostgreSQL)", () => {
  it("claims the next task while a settle transaction is open, waiting for a row lock", async () => {
    const url = server.url();
    const { store, supervisor } = await setUp([{ id: "work", adapter: INTERVAL, concurrency: 4, retry: ONCE }], 1, url);
    const { ids } = await store.tasks.enqueue({ tasks: [3_000, 0].map((ms, i) => ({ persona: "work", title: `t${i}`, payload: { ms } })), now: Date.now() });
    const [first, second] = ids as [number, number];
    // One connection holds the lock; another watches pg_stat_activity (whose view is fixed for the length of a transaction).
    const locker = new pg.Client({ connectionString: url });
    const observer = new pg.Client({ connectionString: url });
    await locker.connect();
    await observer.connect();
    cleanups.push(async () => {
      await locker.end().catch(() => {});
      await observer.end().catch(() => {});
    });
    const settleWaiting = async () =>
      ((await observer.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%= ANY($1::bigint[]) ORDER BY task_id FOR UPDATE%'")).rows[0] as { n: number }).n;
    const firstClaimed = waitFor(store.events, "task:claimed", (e) => e.tasks.some((t) => t.id === first), 5_000);
    const done = completed(store, ids);
    await supervisor.start();
    await firstClaimed;
    // While the first runs (3 s: room for a loaded machine between its claim and this lock; 300 ms once lost
    // that race and settled before the lock), another connection locks its status row: its settle will wait
    // inside its transaction.
    await locker.query("BEGIN");
    await locker.query("SELECT task_id FROM task_status WHERE task_id = $1 FOR UPDATE", [first]);
    const secondClaimed = waitFor(store.events, "task:claimed", (e) => e.tasks.some((t) => t.id === second), 30_000);
    // The settle transaction is open, its first statement (the completed rows' lock) waiting for the lock (pg_stat_activity).
    let waiting = 0;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && waiting === 0; ) {
      waiting = await settleWaiting();
      if (waiting === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(waiting).toBeGreaterThan(0);
    await secondClaimed;
    expect(await settleWaiting()).toBeGreaterThan(0);
    expect((await store.tasks.get({ taskId: first })).status).not.toBe("completed");
    await locker.query("COMMIT");
    await done;
    const tasks = await allDone(store, ids);
    expect(tasks.map((t) => [t.status, t.attempts])).toEqual([
      ["completed", 1],
      ["completed", 1],
    ]);
  });
});
