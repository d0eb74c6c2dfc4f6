import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { openStore, type Store } from "../../src/store/index.js";
import { Scheduler, nextFireAfter, parseCron } from "../../src/supervisor/scheduler.js";
import { syncTestPersonas } from "../helpers/personas.js";
import { T0 } from "../helpers/store.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";

/**
 * Schedules fired by several schedulers, each on its own connection to one database
 * file (as supervisors in separate processes are), on one manual clock.
 */
describe("scheduler", () => {
  let temp: TempDir;
  let stores: Store[];
  let clock: ManualClock;
  const errors: Error[] = [];

  beforeEach(async () => {
    temp = makeTempDir("roster-sched-");
    clock = new ManualClock(T0);
    stores = [];
    for (let i = 0; i < 3; i++) stores.push(await openStore({ path: temp.path("roster.db"), now: clock.now(), monotonic: () => clock.now() }));
    await syncTestPersonas(stores[0]!, clock.now());
    errors.length = 0;
  });
  afterEach(async () => {
    for (const s of stores) await s.close();
    temp.cleanup();
  });

  const schedulerOn = (store: Store, id: string) => new Scheduler({ store, clock, agentId: id, error: (_w, e) => errors.push(e) }, { missedGraceMs: 2_000 });

  async function addEverySecond(id: string, missed: "skip" | "catch-up-once"): Promise<void> {
    const next = nextFireAfter(parseCron("* * * * * *", "UTC"), clock.now())!;
    await stores[0]!.schedules.upsert({ schedules: [{ id, cron: "* * * * * *", timezone: "UTC", missed, task: { persona: "worker", title: id }, nextFireAt: next }], now: clock.now() });
  }

  async function fireTimes(id: string): Promise<number[]> {
    const tasks = await stores[0]!.tasks.list({ limit: 0 });
    return tasks.filter((t) => t.title === id).map((t) => (t.payload as { schedule: { fireAt: number } }).schedule.fireAt).sort((a, b) => a - b);
  }

  it("three schedulers on one database enqueue exactly one task per fire of a per-second schedule over a minute", async () => {
    await addEverySecond("tick", "skip");
    const schedulers = stores.map((s, i) => schedulerOn(s, `sup-${i}`));
    const start = clock.now();
    for (let step = 0; step < 240; step++) {
      clock.advance(250);
      // Each supervisor ticks in its own order; all three see the same due fire.
      await Promise.all([...schedulers].sort(() => (step % 3) - 1).map((s) => s.tick()));
    }
    const fires = await fireTimes("tick");
    expect(errors).toEqual([]);
    expect(fires.length).toBe(60);
    expect(new Set(fires).size).toBe(60);
    expect(fires[0]).toBe(Math.floor(start / 1000) * 1000 + 1000);
    fires.forEach((t, i) => i > 0 && expect(t - fires[i - 1]!).toBe(1000));
  });

  it("skip: a scheduler started after every supervisor was down runs none of the missed fires, then resumes", async () => {
    await addEverySecond("skipper", "skip");
    const s = schedulerOn(stores[1]!, "sup");
    clock.advance(10_000);
    await s.tick();
    // Only the fires within the 2 s grace count as on time; the seven before them were missed and skipped.
    const now = clock.now();
    expect(await fireTimes("skipper")).toEqual([now - 2_000, now - 1_000, now]);
    clock.advance(1_000);
    await s.tick();
    expect((await fireTimes("skipper")).at(-1)).toBe(clock.now());
  });

  it("catch-up-once: the missed fires run once (the latest of them), then the schedule goes on", async () => {
    await addEverySecond("catcher", "catch-up-once");
    const s = schedulerOn(stores[2]!, "sup");
    clock.advance(10_000);
    await s.tick();
    const after = await fireTimes("catcher");
    // Fires older than the 2 s grace are collapsed into one run; the ones within it are on time.
    const missedLatest = Math.floor((clock.now() - 2_001) / 1000) * 1000;
    expect(after).toEqual([missedLatest, clock.now() - 2_000, clock.now() - 1_000, clock.now()]);
    expect(await fireTimes("catcher")).toEqual(after);
  });
});
