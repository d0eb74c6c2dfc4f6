import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/index.js";
import { useAdmin, usePostgres } from "../helpers/postgres.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";

/**
 * LISTEN/NOTIFY wake-ups (issue 19): a store watching for changes hears another
 * store's enqueue (another host, on the same schema) when it commits, survives its
 * listening connection being killed, and stops listening when asked or closed.
 */
const server = await usePostgres();

describe.skipIf(!server.available)("postgres: LISTEN/NOTIFY wake-ups", () => {
  const admin = useAdmin(server);
  let url: string;
  const stores: Store[] = [];
  beforeAll(async () => {
    url = await admin.schema("n1");
  });
  afterAll(async () => {
    for (const store of stores) await store.close();
  });

  async function open(): Promise<Store> {
    const store = await openStore({ path: url, now: T0 });
    stores.push(store);
    return store;
  }

  /** Backends listening on the schema's channel (their last statement was the LISTEN). */
  async function listeners(): Promise<number[]> {
    const { rows } = await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN "roster:n1"' AND state = 'idle'`);
    return rows.map((r) => r.pid);
  }

  async function until<T>(what: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
    for (;;) {
      const value = await what();
      if (ok(value)) return value;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  function counter(): { calls: number; next(): Promise<void>; fn: () => void } {
    let waiters: Array<() => void> = [];
    const c = {
      calls: 0,
      next: () => new Promise<void>((resolve) => waiters.push(resolve)),
      fn: () => {
        c.calls++;
        const w = waiters;
        waiters = [];
        for (const resolve of w) resolve();
      },
    };
    return c;
  }

  it("another store's enqueue wakes the watcher when it commits; a stopped watch stops listening", async () => {
    const a = await open();
    const b = await open();
    await syncTestPersonas(a, T0);
    const seen = counter();
    const stop = b.watchExternalChanges(seen.fn);
    await until(listeners, (pids) => pids.length === 1);
    const woken = seen.next();
    await a.tasks.enqueue({ tasks: [{ persona: "worker", title: "for another host" }], now: T0 });
    await woken;
    expect(seen.calls).toBeGreaterThanOrEqual(1);
    stop();
    await until(listeners, (pids) => pids.length === 0);
  });

  it("a killed listening connection is reopened: the watcher is called once it listens again, and hears later writes", async () => {
    const a = await open();
    const b = await open();
    const seen = counter();
    const unavailable: string[] = [];
    b.events.on("store:watch-unavailable", (e) => unavailable.push(e.reason));
    b.watchExternalChanges(seen.fn);
    const [pid] = await until(listeners, (pids) => pids.length === 1);
    const relistened = seen.next();
    await admin.query("SELECT pg_terminate_backend($1)", [pid]);
    await relistened;
    expect(unavailable.length).toBeGreaterThanOrEqual(1);
    const [again] = await until(listeners, (pids) => pids.length === 1);
    expect(again).not.toBe(pid);
    const woken = seen.next();
    await a.tasks.enqueue({ tasks: [{ persona: "worker", title: "after the reconnect" }], now: T0 });
    await woken;
    await b.close();
    await until(listeners, (pids) => pids.length === 0);
  });

  it("a notification makes the next hasExternalChanges say yes at once; the look after that asks the server, once more yes, then no", async () => {
    const a = await open();
    const b = await open();
    await syncTestPersonas(a, T0);
    const seen = counter();
    const stop = b.watchExternalChanges(seen.fn);
    await until(listeners, (pids) => pids.length === 1);
    await b.hasExternalChanges(); // the first look sees the persona sync, written since b opened
    expect(await b.hasExternalChanges()).toBe(false);
    const woken = seen.next();
    await a.tasks.enqueue({ tasks: [{ persona: "worker", title: "heard" }], now: T0 });
    await woken;
    // Answered from the notification alone (no round trip on the path from an enqueue to its claim).
    expect(await b.hasExternalChanges()).toBe(true);
    // The next look asks the server, sees the enqueue's events as new (one spare wake), then none.
    expect(await b.hasExternalChanges()).toBe(true);
    expect(await b.hasExternalChanges()).toBe(false);
    stop();
    await until(listeners, (pids) => pids.length === 0);
  });

  it("a write committed after the store opened and before its first look is seen by that look, as on SQLite", async () => {
    const a = await open();
    await syncTestPersonas(a, T0);
    const b = await open();
    // roster run opens, claims its task (not ready: a dependency runs elsewhere) and only then looks; the look that
    // first set the baseline said no, so a dependency completed in between, its NOTIFY unheard, woke nobody.
    await a.tasks.enqueue({ tasks: [{ persona: "worker", title: "before the first look" }], now: T0 });
    expect(await b.hasExternalChanges()).toBe(true);
    expect(await b.hasExternalChanges()).toBe(false);
  });

  it("a watcher looks once its LISTEN is up: a write whose NOTIFY came before nobody listened is not missed", async () => {
    const a = await open();
    await syncTestPersonas(a, T0);
    const b = await open();
    await a.tasks.enqueue({ tasks: [{ persona: "worker", title: "notified before the watch listened" }], now: T0 });
    const seen = counter();
    const looked = seen.next();
    const stop = b.watchExternalChanges(seen.fn);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve("not called within 10 s of the watch"), 10_000)));
    expect(await Promise.race([looked.then(() => "called"), late])).toBe("called");
    clearTimeout(timer);
    expect(await b.hasExternalChanges()).toBe(true);
    stop();
    await until(listeners, (pids) => pids.length === 0);
  });

  it("closing the store ends its listening connection", async () => {
    const b = await open();
    b.watchExternalChanges(() => {});
    await until(listeners, (pids) => pids.length === 1);
    await b.close();
    await until(listeners, (pids) => pids.length === 0);
  });
});
