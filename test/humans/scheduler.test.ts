import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
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
/** The next `n` fires of `cron` in `timezone` after `from`, as ISO times. */
function fires(cron: string, timezone: string, from: string, n: number): string[] {
  const parsed = parseCron(cron, timezone);
  const out: string[] = [];
  for (let t = Date.parse(from), i = 0; i < n; i++) {
    t = nextFireAfter(parsed, t)!;
    out.push(new Date(t).toISOString());
  }
  return out;
}

describe("daylight saving time, as docs/humans-and-schedules.md says", () => {
  it("clocks forward: a daily time in the skipped hour fires an hour late that day; an hourly one has no fire in it", () => {
    // Europe/Paris, 28 March 2027: 02:00 CET (01:00Z) becomes 03:00 CEST.
    expect(fires("30 2 * * *", "Europe/Paris", "2027-03-27T12:00:00Z", 2)).toEqual(["2027-03-28T01:30:00.000Z", "2027-03-29T00:30:00.000Z"]); // 03:30 CEST, then 02:30 CEST
    expect(fires("0 * * * *", "Europe/Paris", "2027-03-27T23:30:00Z", 3)).toEqual(["2027-03-28T00:00:00.000Z", "2027-03-28T01:00:00.000Z", "2027-03-28T02:00:00.000Z"]); // 01:00 CET, 03:00 CEST, 04:00 CEST
  });

  it("clocks back: a time in the repeated hour fires at its first pass only", () => {
    // Europe/Paris, 31 October 2027: 03:00 CEST (01:00Z) becomes 02:00 CET.
    expect(fires("30 2 * * *", "Europe/Paris", "2027-10-30T12:00:00Z", 2)).toEqual(["2027-10-31T00:30:00.000Z", "2027-11-01T01:30:00.000Z"]); // 02:30 CEST once
    expect(fires("0 * * * *", "Europe/Paris", "2027-10-30T23:30:00Z", 2)).toEqual(["2027-10-31T00:00:00.000Z", "2027-10-31T02:00:00.000Z"]); // 02:00 CEST, then 03:00 CET: two hours
    expect(fires("*/30 * * * *", "America/New_York", "2027-11-07T05:00:00Z", 2)).toEqual(["2027-11-07T05:30:00.000Z", "2027-11-07T07:00:00.000Z"]); // 01:30 EDT, then 02:00 EST
  });
});

describe("scheduler", () => {
  let temp: TempDir;
  let stores: Store[];
  let clock: ManualClock;
  const errors: Error[] = [];
  const warnings: string[] = [];

  beforeEach(async () => {
    temp = makeTempDir("roster-sched-");
    clock = new ManualClock(T0);
    stores = [];
    for (let i = 0; i < 3; i++) stores.push(await openStore({ path: temp.path("roster.db"), now: clock.now(), monotonic: () => clock.now() }));
    await syncTestPersonas(stores[0]!, clock.now());
    errors.length = 0;
    warnings.length = 0;
  });
  afterEach(async () => {
    for (const s of stores) await s.close();
    temp.cleanup();
  });

  const schedulerOn = (store: Store, id: string) => new Scheduler({ store, clock, agentId: id, error: (_w, e) => errors.push(e), warn: (_w, m) => warnings.push(m) }, { missedGraceMs: 2_000 });

  async function addEverySecond(id: string, missed: "skip" | "catch-up-once", persona = "worker", timezone = "UTC"): Promise<void> {
    const next = nextFireAfter(parseCron("* * * * * *", "UTC"), clock.now())!;
    await stores[0]!.schedules.upsert({ schedules: [{ id, cron: "* * * * * *", timezone, missed, task: { persona, title: id }, nextFireAt: next }], now: clock.now() });
  }

  async function tickAll(schedulers: Scheduler[], steps: number): Promise<void> {
    for (let step = 0; step < steps; step++) {
      clock.advance(250);
      await Promise.all(schedulers.map((s) => s.tick()));
    }
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

  it("a schedule whose persona was retired after it was added is paused once, by one of three schedulers, with one warning and no error", async () => {
    await addEverySecond("triage", "skip", "reviewer");
    await stores[0]!.personas.retire({ id: "reviewer", retired: true, now: clock.now() });
    const schedulers = stores.map((s, i) => schedulerOn(s, `sup-${i}`));
    await tickAll(schedulers, 40);
    expect(errors).toEqual([]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^schedule "triage": task\.persona: retired persona "reviewer" \(known: planner, worker\); paused the schedule: .*`roster schedule resume triage`$/);
    expect((await stores[0]!.schedules.get({ id: "triage" }))!.pausedAt).not.toBeNull();
    expect(await fireTimes("triage")).toEqual([]);
    // Resuming is refused while the persona is retired, and fires again once it is back.
    await expect(stores[1]!.schedules.pause({ id: "triage", paused: false, nextFireAt: clock.now() + 1_000, now: clock.now() })).rejects.toMatchObject({ code: "PERSONA_NOT_FOUND" });
    await stores[0]!.personas.retire({ id: "reviewer", retired: false, now: clock.now() });
    await stores[1]!.schedules.pause({ id: "triage", paused: false, nextFireAt: clock.now() + 1_000, now: clock.now() });
    await tickAll(schedulers, 8);
    expect(await fireTimes("triage")).toHaveLength(2);
    expect(errors).toEqual([]);
    expect(warnings).toHaveLength(1);
  });

  it("a schedule whose expression never fires again fires its last time once, then keeps no next fire and is never taken again", async () => {
    // Seven fields (a year), stored before `schedule add` refused them: one fire, a second from now.
    const at = new Date(clock.now() + 1_000);
    const cron = `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} ${at.getUTCDate()} ${at.getUTCMonth() + 1} * ${at.getUTCFullYear()}`;
    await stores[0]!.schedules.upsert({
      schedules: [{ id: "once", cron, timezone: "UTC", task: { persona: "worker", title: "once" }, nextFireAt: nextFireAfter(parseCron(cron, "UTC"), clock.now())! }],
      now: clock.now(),
    });
    const fires = vi.spyOn(stores[0]!.schedules, "fire");
    const s = schedulerOn(stores[0]!, "sup");
    await tickAll([s], 40);
    expect(await fireTimes("once")).toEqual([at.getTime()]);
    expect(fires).toHaveBeenCalledTimes(1);
    expect(fires.mock.calls[0]![0]).toMatchObject({ fireAts: [at.getTime()], nextFireAt: null });
    expect(await stores[0]!.schedules.get({ id: "once" })).toMatchObject({ nextFireAt: null, lastFireAt: at.getTime(), pausedAt: null });
    expect(await stores[0]!.schedules.nextFireAt()).toBeNull();
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it("a stored schedule that fails with an input error is reported once and passed over until it changes", async () => {
    // Stored before zones were checked when a schedule is added: croner refuses it at every fire.
    await addEverySecond("mars", "skip", "worker", "Mars/Olympus");
    const s = schedulerOn(stores[0]!, "sup");
    await tickAll([s], 20);
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(["VALIDATION"]);
    expect(errors[0]!.message).toMatch(/^schedules\.mars\.timezone: "Mars\/Olympus" is not an IANA time zone .*; schedule "mars" is passed over until it is changed$/);
    await addEverySecond("mars", "skip", "worker", "UTC");
    await tickAll([s], 8);
    expect(await fireTimes("mars")).toHaveLength(2);
    expect(errors).toHaveLength(1);
  });
});
