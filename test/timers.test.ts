import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TIMER_MS_MAX, setLongTimeout } from "../src/timers.js";

const DAY_MS = 86_400_000;

describe("setLongTimeout", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("runs a callback 30 days out at 30 days, not before, and once", () => {
    let fired = 0;
    setLongTimeout(() => fired++, 30 * DAY_MS);
    // Node (and the fake timers, which copy it) run a single setTimeout this long after 1 ms.
    vi.advanceTimersByTime(1);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(TIMER_MS_MAX);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(30 * DAY_MS - TIMER_MS_MAX - 2);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(1);
    vi.advanceTimersByTime(60 * DAY_MS);
    expect(fired).toBe(1);
  });

  it("arms no wait shorter than TIMER_MS_MAX before the last one", () => {
    setLongTimeout(() => {}, 100 * DAY_MS);
    const waits: number[] = [];
    for (let at = 0; vi.getTimerCount() > 0; at = Date.now()) {
      vi.advanceTimersToNextTimer();
      waits.push(Date.now() - at);
    }
    expect(waits).toEqual([TIMER_MS_MAX, TIMER_MS_MAX, TIMER_MS_MAX, TIMER_MS_MAX, 100 * DAY_MS - 4 * TIMER_MS_MAX]);
  });

  it("runs a delay within TIMER_MS_MAX as setTimeout does", () => {
    let fired = 0;
    setLongTimeout(() => fired++, 250);
    vi.advanceTimersByTime(249);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(1);
  });

  it("runs a negative or NaN delay on the next turn and never an infinite one", () => {
    const fired: string[] = [];
    setLongTimeout(() => fired.push("negative"), -5);
    setLongTimeout(() => fired.push("nan"), Number.NaN);
    setLongTimeout(() => fired.push("infinite"), Number.POSITIVE_INFINITY);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(["negative", "nan"]);
    vi.advanceTimersByTime(10 * TIMER_MS_MAX);
    expect(fired).toEqual(["negative", "nan"]);
  });

  it("does not run once cleared, before or after it re-armed", () => {
    let fired = 0;
    const early = setLongTimeout(() => fired++, 30 * DAY_MS);
    const late = setLongTimeout(() => fired++, 30 * DAY_MS);
    early.clear();
    vi.advanceTimersByTime(TIMER_MS_MAX + 1);
    late.clear();
    vi.advanceTimersByTime(30 * DAY_MS);
    expect(fired).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("setLongTimeout on Node's timers", () => {
  it("keeps an unref'd timer unref'd across its waits, and ref() takes that back", () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const created: NodeJS.Timeout[] = [];
      const real = globalThis.setTimeout;
      const spy = vi.spyOn(globalThis, "setTimeout").mockImplementation(((fn: () => void, ms: number) => {
        const timer = real(fn, ms);
        created.push(timer);
        return timer;
      }) as typeof setTimeout);
      const timer = setLongTimeout(() => {}, 30 * DAY_MS).unref();
      vi.advanceTimersByTime(TIMER_MS_MAX);
      expect(created.map((t) => t.hasRef())).toEqual([false, false]);
      timer.ref();
      expect(created.at(-1)!.hasRef()).toBe(true);
      timer.clear();
      spy.mockRestore();
    } finally {
      vi.useRealTimers();
    }
  });
});
