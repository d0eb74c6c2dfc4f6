import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RosterError } from "../../src/errors.js";
import { openStore, type Store } from "../../src/store/index.js";
import { BUSY_RETRIES_DEFAULT } from "../../src/store/sqlite/database.js";
import { WATCH_FOLLOW_UP_MS } from "../../src/store/sqlite/store.js";
import { collect, waitFor } from "../helpers/events.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

/** SQLite specifics: other connections' writes, the write lock and SQLITE_BUSY. */
describe("sqlite connection", () => {
  let temp: TempDir;
  let path: string;
  const stores: Store[] = [];
  const open = async (options: { busyTimeoutMs?: number } = {}) => {
    const store = await openStore({ path, now: T0, ...options });
    stores.push(store);
    return store;
  };

  beforeEach(async () => {
    temp = makeTempDir("roster-conn-");
    path = temp.path("roster.db");
    await syncTestPersonas(await open(), T0);
  });
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    temp.cleanup();
  });

  it("hasExternalChanges sees another connection's commit once, and not its own writes", async () => {
    const [a] = stores;
    const b = await open();
    expect(await b.hasExternalChanges()).toBe(false);
    await a!.tasks.enqueue({ tasks: [{ persona: "worker", title: "from a" }], now: T0 });
    expect(await b.hasExternalChanges()).toBe(true);
    expect(await b.hasExternalChanges()).toBe(false);
    await b.tasks.enqueue({ tasks: [{ persona: "worker", title: "from b" }], now: T0 });
    expect(await b.hasExternalChanges()).toBe(false);
    expect(await a!.hasExternalChanges()).toBe(true);
  });

  it("watchExternalChanges calls back after another connection commits, and stops when asked", async () => {
    const [a] = stores;
    const b = await open();
    let calls = 0;
    let notify: () => void = () => {};
    const stop = b.watchExternalChanges(() => {
      calls++;
      notify();
    });
    const seen = new Promise<void>((resolve) => (notify = resolve));
    await a!.tasks.enqueue({ tasks: [{ persona: "worker", title: "from a" }], now: T0 });
    await seen;
    expect(calls).toBeGreaterThan(0);
    expect(await b.hasExternalChanges()).toBe(true);
    stop();
    stop(); // twice is harmless
  });

  it("watchExternalChanges calls again a few ms after a write, so a commit that was not yet visible at the first call is still seen", async () => {
    const [a] = stores;
    const b = await open();
    const calls: number[] = [];
    const stop = b.watchExternalChanges(() => calls.push(performance.now()));
    await a!.tasks.enqueue({ tasks: [{ persona: "worker", title: "from a" }], now: T0 });
    const lastFollowUp = WATCH_FOLLOW_UP_MS.reduce((sum, ms) => sum + ms, 0);
    const deadline = performance.now() + 5_000;
    while (calls.length < 1 + WATCH_FOLLOW_UP_MS.length && performance.now() < deadline) await new Promise((r) => setTimeout(r, lastFollowUp));
    stop();
    expect(calls.length).toBeGreaterThanOrEqual(1 + WATCH_FOLLOW_UP_MS.length);
    // The last call comes the whole follow-up schedule after the first, not within the write's own burst.
    expect(calls[calls.length - 1]! - calls[0]!).toBeGreaterThanOrEqual(lastFollowUp * 0.9);
    const settled = calls.length;
    await new Promise((r) => setTimeout(r, lastFollowUp * 2));
    expect(calls).toHaveLength(settled); // stopped: no call after stop()
  });

  it("close() ends every watch, its pending follow-up calls included", async () => {
    const [a] = stores;
    const b = await openStore({ path, now: T0 });
    let calls = 0;
    let first: () => void = () => {};
    const seen = new Promise<void>((resolve) => (first = resolve));
    b.watchExternalChanges(() => {
      calls++;
      first();
    });
    await a!.tasks.enqueue({ tasks: [{ persona: "worker", title: "from a" }], now: T0 });
    await seen;
    await b.close();
    const atClose = calls;
    await new Promise((r) => setTimeout(r, WATCH_FOLLOW_UP_MS.reduce((sum, ms) => sum + ms, 0) * 2));
    expect(calls).toBe(atClose);
  });

  it("watchExternalChanges on an in-memory store is a no-op that can be stopped", async () => {
    const memory = await openStore({ path: ":memory:", now: T0 });
    stores.push(memory);
    const stop = memory.watchExternalChanges(() => {
      throw new Error("an in-memory database has no other connections");
    });
    stop();
  });

  it("a write that meets another process's write lock is retried and lands once the lock is released", async () => {
    const store = await open({ busyTimeoutMs: 20 });
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    const retried = waitFor(store.events, "db:busy-retry");
    const enqueued = store.tasks.enqueue({ tasks: [{ persona: "worker", title: "waits its turn" }], now: T0 });
    expect((await retried).attempt).toBe(1);
    other.exec("COMMIT");
    other.close();
    const { ids } = await enqueued;
    expect((await store.tasks.get({ taskId: ids[0]! })).title).toBe("waits its turn");
  });

  it("a write lock that is never released ends in DATABASE_BUSY after the set number of retries", async () => {
    const store = await open({ busyTimeoutMs: 5 });
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    const retries = collect(store.events, "db:busy-retry");
    try {
      await expect(store.tasks.claim({ persona: "worker", agentId: "a", now: T0 })).rejects.toSatisfy(
        (e) => e instanceof RosterError && e.code === "DATABASE_BUSY",
      );
      expect(retries.items.map((r) => r.attempt)).toEqual(Array.from({ length: BUSY_RETRIES_DEFAULT }, (_, i) => i + 1));
    } finally {
      retries.stop();
      other.exec("ROLLBACK");
      other.close();
    }
  });

  it("a second store on the same file sees the first one's tasks and cannot claim what it claimed", async () => {
    const [a] = stores;
    const b = await open();
    await a!.tasks.enqueue({ tasks: [{ persona: "worker", title: "one" }], now: T0 });
    const first = await a!.tasks.claim({ persona: "worker", agentId: "a", now: T0 });
    expect(first).toHaveLength(1);
    expect(await b.tasks.claim({ persona: "worker", agentId: "b", now: T0 })).toEqual([]);
    expect(await b.tasks.completeIfLeased({ taskId: first[0]!.id, leaseToken: first[0]!.leaseToken, now: T0 })).toMatchObject({ ok: true });
  });
});
