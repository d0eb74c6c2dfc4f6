import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/logging/logger.js";
import { SupervisorEventBus } from "../../src/supervisor/events.js";
import { StallGuard } from "../../src/supervisor/stall-guard.js";
import { openTestStore, type TestStore } from "../helpers/store.js";

let db: TestStore | null = null;
afterEach(async () => {
  await db?.close();
  db = null;
});

const POLL_MS = 100;

/**
 * The guard on a real store with one ready task of "worker" and a free slot, its producer never
 * trying a claim, on a monotonic clock the test moves: what it reports, and what it wakes.
 */
async function guarded(canClaim: () => boolean) {
  db = await openTestStore({ memory: true });
  await db.store.tasks.enqueue({ tasks: [{ persona: "worker", title: "waits" }], now: db.clock.now() });
  let mono = 0;
  const stalls: number[] = [];
  const woken: string[][] = [];
  const events = new SupervisorEventBus();
  events.on("stall:detected", (s) => stalls.push(s.taskId));
  const guard = new StallGuard(
    {
      store: db.store,
      clock: db.clock,
      monotonic: () => mono,
      producers: () => [{ id: "worker", want: (free: number) => Math.min(free, 1), lastClaimAttemptAt: Number.NEGATIVE_INFINITY }],
      free: () => 4,
      canClaim,
      events,
      logger: silentLogger(),
      wake: (personas) => woken.push([...personas]),
      error: (where, error) => {
        throw new Error(`${where}: ${error.message}`);
      },
    },
    POLL_MS,
  );
  return {
    guard,
    stalls,
    woken,
    /** A check, `ms` after the last one. */
    async checkAfter(ms: number) {
      mono += ms;
      await guard.check();
    },
    /** Checks every poll interval for `ms`, the last one `ms` after the one before them. */
    async checkEveryPollFor(ms: number) {
      for (let left = ms; left > 0; left -= POLL_MS) {
        mono += Math.min(POLL_MS, left);
        await guard.check();
      }
    },
  };
}

describe("stall guard", () => {
  it("reports a ready task that waited past the bound beside a free slot with no claim tried", async () => {
    const g = await guarded(() => true);
    await g.checkAfter(0);
    await g.checkEveryPollFor(g.guard.boundMs);
    expect(g.stalls).toEqual([]);
    await g.checkAfter(1);
    expect(g.stalls).toHaveLength(1);
    expect(g.woken.length).toBeGreaterThan(1);
    expect(g.woken.every((w) => w.length === 1 && w[0] === "worker")).toBe(true);
  });

  it("does not count the time its own process did not run (stopped, or its event loop held) as a wait", async () => {
    const g = await guarded(() => true);
    await g.checkAfter(0);
    // SIGSTOP for ten bounds, then SIGCONT: the next check comes late. Nothing ran meanwhile, no
    // claim could be tried, and the task is judged afresh from here.
    await g.checkAfter(10 * g.guard.boundMs);
    expect(g.stalls).toEqual([]);
    await g.checkEveryPollFor(g.guard.boundMs);
    expect(g.stalls).toEqual([]);
    await g.checkAfter(1);
    expect(g.stalls).toHaveLength(1);
  });

  it("reports no stall while the supervisor claims nothing because its database does not take its writes, and counts the wait again from when claims resume", async () => {
    let claiming = false;
    const g = await guarded(() => claiming);
    // The database does not answer this process's writes for three bounds: the ready task waits
    // on purpose (connection.ts), which the supervisor reports as an outage, not as a stall.
    await g.checkAfter(0);
    await g.checkEveryPollFor(3 * g.guard.boundMs);
    expect(g.stalls).toEqual([]);
    expect(g.woken).toEqual([]);
    // Claims back on: the first check sees the task afresh and wakes its persona; only a whole
    // bound after that, still unclaimed, is a stall.
    claiming = true;
    await g.checkAfter(POLL_MS);
    expect(g.stalls).toEqual([]);
    expect(g.woken).toEqual([["worker"]]);
    await g.checkEveryPollFor(g.guard.boundMs);
    expect(g.stalls).toEqual([]);
    await g.checkAfter(1);
    expect(g.stalls).toHaveLength(1);
  });
});
