import { afterEach, describe, expect, it, vi } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { openStore } from "../../src/store/index.js";
import { Waker } from "../../src/supervisor/waker.js";
import { TIMER_MS_MAX } from "../../src/timers.js";
import { openTestStore } from "../helpers/store.js";
import { finished, harness, type Harness } from "./helpers.js";

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe("supervisor: wake-ups", () => {
  it("starts a task another process enqueued without waiting for the poll interval (the database folder is watched)", async () => {
    // A poll interval far longer than the test's timeout: only the file watch can wake it.
    h = await harness([{ id: "echoer", adapter: { kind: "echo" } }], { config: { pollIntervalMs: 600_000 } });
    await h.supervisor.start();
    const done = finished(h.supervisor.events, 1, () => true, 20_000);
    const other = await openStore({ path: h.dbPath });
    try {
      const { ids } = await other.tasks.enqueue({ tasks: [{ persona: "echoer", title: "from another process", payload: { hello: 1 } }], now: Date.now() });
      const [run] = await done;
      expect(run!.taskId).toBe(ids[0]);
      expect(run!.outcome).toBe("completed");
    } finally {
      await other.close();
    }
  });
});

describe("waker: run_at timer", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("does not wake before the due time when its timer fires early against the clock, and wakes once it is due", async () => {
    const db = await openTestStore({ memory: true });
    vi.useFakeTimers();
    const clock = new ManualClock(1_000);
    const wakes: Array<readonly string[] | null> = [];
    const waker = new Waker(
      { store: db.store, clock, wake: (p) => wakes.push(p), cancelled: () => {}, leaseExpired: () => {}, externalWrite: () => {}, tick: () => {}, error: (where, e) => { throw e; } },
      60_000,
    );
    try {
      waker.start();
      waker.at(1_005);
      // The timer's 5 ms pass while the clock (as after long synchronous work) has not moved.
      vi.advanceTimersByTime(5);
      expect(wakes).toEqual([]);
      clock.advance(5);
      vi.advanceTimersByTime(5);
      expect(wakes).toEqual([null]);
    } finally {
      waker.stop();
      await db.close();
    }
  });

  it("waits for a run_at 30 days out in waits of 2^31 - 1 ms (Node's longest), not 1 ms, and wakes at it", async () => {
    const db = await openTestStore({ memory: true });
    vi.useFakeTimers({ now: 0 });
    // The fake timers move Date.now, and copy Node: a setTimeout past 2^31 - 1 ms runs after 1 ms.
    const clock = { now: () => Date.now() };
    const wakes: Array<readonly string[] | null> = [];
    const waker = new Waker(
      { store: db.store, clock, wake: (p) => wakes.push(p), cancelled: () => {}, leaseExpired: () => {}, externalWrite: () => {}, tick: () => {}, error: (where, e) => { throw e; } },
      TIMER_MS_MAX,
    );
    const due = 30 * 86_400_000;
    try {
      waker.start();
      waker.at(due);
      const firedAt: number[] = [];
      while (wakes.length === 0 && firedAt.length < 5) {
        vi.advanceTimersToNextTimer();
        firedAt.push(Date.now());
      }
      expect(firedAt).toEqual([TIMER_MS_MAX, due]);
      expect(wakes).toEqual([null]);
    } finally {
      waker.stop();
      await db.close();
    }
  });
});

describe("waker: whom a readied task wakes", () => {
  it("a completed dependency wakes only the personas of the tasks it readied", async () => {
    const db = await openTestStore({ memory: true });
    const clock = new ManualClock(1_000);
    const wakes: Array<readonly string[] | null> = [];
    const waker = new Waker(
      { store: db.store, clock, wake: (p) => wakes.push(p), cancelled: () => {}, leaseExpired: () => {}, externalWrite: () => {}, tick: () => {}, error: (where, e) => { throw e; } },
      60_000,
    );
    try {
      const { ids } = await db.store.tasks.enqueue({
        tasks: [
          { ref: "plan", persona: "planner", title: "plan" },
          { ref: "code", persona: "worker", title: "code", dependsOn: ["plan"] },
          { ref: "review", persona: "reviewer", title: "review", dependsOn: ["code"] },
        ],
        now: clock.now(),
      });
      const [plan] = await db.store.tasks.claim({ persona: "planner", agentId: "a", now: clock.now() });
      waker.start();
      await db.store.tasks.completeIfLeased({ taskId: plan!.id, leaseToken: plan!.leaseToken, now: clock.now() });
      // Not the planner, not the reviewer (still waiting on the code): the worker alone.
      expect(wakes).toEqual([["worker"]]);
      expect((await db.store.tasks.get({ taskId: ids[2]! })).status).toBe("waiting");
    } finally {
      waker.stop();
      await db.close();
    }
  });
});
