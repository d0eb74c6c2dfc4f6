import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../src/store/index.js";
import { LISTEN_PROBE_MS, LISTEN_PROBE_TIMEOUT_MS } from "../../src/store/postgres/listener.js";
import { startCutProxy } from "../helpers/tcp-proxy.js";
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
    const listened = seen.next();
    const stop = b.watchExternalChanges(seen.fn);
    await listened;
    // Once LISTEN is up: a yes for whatever went unheard before it, and the look after it sees the persona
    // sync, written since b opened.
    expect(await b.hasExternalChanges()).toBe(true);
    expect(await b.hasExternalChanges()).toBe(true);
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

  it("while it listens, a wake-ups-only look answers from the notifications alone: another host's heartbeat wakes nothing, its enqueue does, once", async () => {
    const a = await open();
    const b = await open();
    await syncTestPersonas(a, T0);
    const agent = await a.agents.register({ name: "another host", kind: "supervisor", heartbeatTimeoutMs: 60_000, now: T0 });
    const seen = counter();
    const listened = seen.next();
    const stop = b.watchExternalChanges(seen.fn);
    await listened;
    // The yes for what went unheard before LISTEN (the persona sync, the registration), then nothing.
    expect(await b.hasExternalChanges({ wakeUpsOnly: true })).toBe(true);
    expect(await b.hasExternalChanges({ wakeUpsOnly: true })).toBe(false);
    // Heartbeats write, and NOTIFY nobody: no work for b can come of them.
    for (let i = 1; i <= 3; i++) expect((await a.agents.heartbeat({ agentId: agent.id, now: T0 + i })).agentActive).toBe(true);
    expect(await b.hasExternalChanges({ wakeUpsOnly: true })).toBe(false);
    // A caller that wants every write (the dashboard) still gets them from the look.
    expect(await b.hasExternalChanges()).toBe(true);
    const woken = seen.next();
    await a.tasks.enqueue({ tasks: [{ persona: "worker", title: "work for b" }], now: T0 + 5 });
    await woken;
    expect(await b.hasExternalChanges({ wakeUpsOnly: true })).toBe(true);
    expect(await b.hasExternalChanges({ wakeUpsOnly: true })).toBe(false);
    stop();
    await until(listeners, (pids) => pids.length === 0);
    // Not listening any more: the look answers again (rebased, with one yes for the writes meanwhile).
    await a.agents.heartbeat({ agentId: agent.id, now: T0 + 6 });
    expect(await b.hasExternalChanges({ wakeUpsOnly: true })).toBe(true);
    expect(await b.hasExternalChanges({ wakeUpsOnly: true })).toBe(false);
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

  it("a listening connection whose link is cut silently is found by its probe and reopened, and what went unheard meanwhile is said", async () => {
    const a = await open();
    await syncTestPersonas(a, T0);
    const proxy = await startCutProxy("127.0.0.1", Number(new URL(url).port));
    try {
      // far reaches the server through the proxy; a, as another host, directly.
      const far = await openStore({ path: proxy.url(url), now: T0 });
      stores.push(far);
      const unavailable: string[] = [];
      far.events.on("store:watch-unavailable", (e) => unavailable.push(e.reason));
      const seen = counter();
      const listened = seen.next();
      far.watchExternalChanges(seen.fn);
      await listened;
      expect(await far.hasExternalChanges({ wakeUpsOnly: true })).toBe(true);
      expect(await far.hasExternalChanges({ wakeUpsOnly: true })).toBe(false);
      // Bytes stop, nothing is reset: the listener's socket stays open and hears nothing.
      proxy.cut("drop");
      const cutAt = Date.now();
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (unavailable.length > 0) {
            clearInterval(check);
            resolve();
          }
        }, 50);
      });
      // Found by a probe: within one interval and one timeout of the cut (and room for a busy machine's late timers).
      expect(Date.now() - cutAt).toBeLessThan(LISTEN_PROBE_MS + LISTEN_PROBE_TIMEOUT_MS + 10_000);
      expect(unavailable[0]).toContain("did not answer a probe");
      // Another host's enqueue while the link is down goes unheard; once it is back, the listener reopens and the
      // watcher's look says yes for it.
      await a.tasks.enqueue({ tasks: [{ persona: "worker", title: "while the link was down" }], now: T0 + 1 });
      const relistened = seen.next();
      proxy.restore();
      await relistened;
      expect(await far.hasExternalChanges({ wakeUpsOnly: true })).toBe(true);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  it("closing the store ends its listening connection", async () => {
    const b = await open();
    b.watchExternalChanges(() => {});
    await until(listeners, (pids) => pids.length === 1);
    await b.close();
    await until(listeners, (pids) => pids.length === 0);
  });
});
