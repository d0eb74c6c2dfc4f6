import { afterEach, describe, expect, it } from "vitest";
import type { Store } from "../../src/store/index.js";
import { harness, type Harness } from "./helpers.js";

/**
 * The supervisor's cycle on SQLite: the completer's settle transaction carries the claims
 * into the room its batch frees (store.tasks.settleAndClaim, src/supervisor/claim-loop.ts
 * joinSettle). Every task ends completed once, whether that transaction commits or fails.
 */
let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

/** Counts the calls of the store's settleAndClaim; `fail` makes each throw before it writes. */
function watchSettleAndClaim(store: Store, fail: boolean): { calls: () => number } {
  const real = store.tasks.settleAndClaim!.bind(store.tasks);
  let calls = 0;
  store.tasks.settleAndClaim = async (params) => {
    calls++;
    if (fail) throw new Error("settleAndClaim refused by the test");
    return real(params);
  };
  return { calls: () => calls };
}

async function runAll(store: Store, supervisor: Harness["supervisor"], count: number): Promise<number[]> {
  const { ids } = await store.tasks.enqueue({ tasks: Array.from({ length: count }, (_, i) => ({ persona: "work", title: `t${i}`, payload: { i } })), now: Date.now() });
  const left = new Set(ids);
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tasks ${[...left].join(", ")} did not complete`)), 20_000);
    store.events.on("task:completed", (e) => {
      left.delete(e.taskId);
      if (left.size === 0) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  await supervisor.start();
  await done;
  return ids;
}

describe("supervisor: settlements and the next claims in one transaction (SQLite)", () => {
  it("claims into the room a batch frees in the batch's own settle transaction; every task completes once", async () => {
    // The persona's concurrency is the supervisor's: no claim can take a finished attempt's place before its settle.
    h = await harness([{ id: "work", adapter: { kind: "echo" }, concurrency: 4 }], { config: { concurrency: 4 } });
    const watched = watchSettleAndClaim(h.store, false);
    const ids = await runAll(h.store, h.supervisor, 24);
    expect(watched.calls()).toBeGreaterThan(0);
    const tasks = await Promise.all(ids.map((taskId) => h!.store.tasks.get({ taskId })));
    expect(tasks.map((t) => [t.status, t.attempts])).toEqual(ids.map(() => ["completed", 1]));
    for (const id of ids) {
      const types = (await h.store.tasks.events({ taskId: id })).map((e) => e.type).filter((t) => t !== "task:started");
      expect(types).toEqual(["task:enqueued", "task:claimed", "task:completed"]);
    }
  });

  it("settles a batch alone at once when its transaction with claims fails (nothing written), and claims in a pass of its own", async () => {
    h = await harness([{ id: "work", adapter: { kind: "echo" }, concurrency: 4 }], { config: { concurrency: 4 } });
    const watched = watchSettleAndClaim(h.store, true);
    const errors: string[] = [];
    h.supervisor.events.on("supervisor:error", (e) => errors.push(e.where));
    const ids = await runAll(h.store, h.supervisor, 12);
    expect(watched.calls()).toBeGreaterThan(0);
    expect(errors.length).toBeGreaterThan(0);
    expect(new Set(errors)).toEqual(new Set(["completer.settleAndClaim"]));
    const tasks = await Promise.all(ids.map((taskId) => h!.store.tasks.get({ taskId })));
    expect(tasks.map((t) => [t.status, t.attempts])).toEqual(ids.map(() => ["completed", 1]));
  });
});
