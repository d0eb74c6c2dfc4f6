import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SupervisorEventBus } from "../../src/supervisor/events.js";
import { TIMER_MS_MAX } from "../../src/timers.js";
import { waitFor } from "../helpers/events.js";
import { finished, harness, next, type Harness, type TestPersona } from "./helpers.js";

/**
 * Waits longer than a timer can hold (TIMER_MS_MAX, about 24.8 days): an idle supervisor
 * with a task delayed 30 days, or a persona behind a breaker whose cooldown is 34 days,
 * arms its timer and stays idle. Node runs a setTimeout that long after 1 ms with a
 * TimeoutOverflowWarning, and the waker and the gate waker re-armed it each time: some
 * 760 warnings a second and 20-30 % of a core, forever. The warnings of this process are
 * counted over a number of the supervisor's own poll ticks, not over a span of time.
 * An attempt's own policy.timeoutMs and a sleep adapter's payload.ms have no upper bound
 * either: past TIMER_MS_MAX the timeout fired at once, and the sleep ended at once.
 */
const DAY_MS = 86_400_000;
const once = { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 };
const TICKS = 15;

let h: Harness | null = null;
const overflows: string[] = [];
const onWarning = (warning: Error): void => {
  if (warning.name === "TimeoutOverflowWarning") overflows.push(warning.message);
};

beforeEach(() => {
  overflows.length = 0;
  process.on("warning", onWarning);
});
afterEach(async () => {
  process.off("warning", onWarning);
  await h?.close();
  h = null;
});

/** Resolves after `count` loop:tick events (a claim pass ended or the poll ticked). */
async function ticks(events: SupervisorEventBus, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await next(events, "loop:tick");
  // Warnings are emitted on the next turn of the loop after the setTimeout that caused them.
  await new Promise((resolve) => setImmediate(resolve));
}

describe("supervisor: waits longer than a timer holds", () => {
  it("stays idle with a task delayed 30 days: its run_at timer overflows nothing", async () => {
    expect(30 * DAY_MS).toBeGreaterThan(TIMER_MS_MAX);
    h = await harness([{ id: "echoer", adapter: { kind: "echo" } }]);
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "echoer", title: "in 30 days", delayMs: 30 * DAY_MS }], now: Date.now() });
    let started = 0;
    h.supervisor.events.on("task:run-started", () => started++);
    await h.supervisor.start();
    await ticks(h.supervisor.events, TICKS);
    expect(overflows).toEqual([]);
    expect(started).toBe(0);
    expect((await h.store.tasks.get({ taskId: ids[0]! })).status).toBe("pending");
  });

  it("stays idle behind a breaker whose cooldown is 34 days: its gate timer overflows nothing", async () => {
    const cooldownMs = 3_000_000_000;
    expect(cooldownMs).toBeGreaterThan(TIMER_MS_MAX);
    const persona = { id: "failer", adapter: { kind: "fail", retryable: false }, concurrency: 1, breaker: { failures: 1, cooldownMs } } as TestPersona;
    h = await harness([persona]);
    const { ids } = await h.store.tasks.enqueue({
      tasks: [
        { persona: "failer", title: "opens the breaker", priority: 1 },
        { persona: "failer", title: "waits behind it" },
      ],
      now: Date.now(),
    });
    const gated = waitFor(h.store.events, "claim:gated", (e) => e.persona === "failer" && e.until !== null, 20_000);
    const failed = finished(h.supervisor.events, 1);
    await h.supervisor.start();
    const [first] = await failed;
    expect(first!.taskId).toBe(ids[0]);
    const gate = await gated;
    expect(gate.until! - Date.now()).toBeGreaterThan(TIMER_MS_MAX);
    await ticks(h.supervisor.events, TICKS);
    expect(overflows).toEqual([]);
    expect((await h.store.tasks.get({ taskId: ids[1]! })).status).toBe("pending");
  });

  it("does not time out at once an attempt whose own policy.timeoutMs is 35 days", async () => {
    h = await harness([{ id: "sleeper", adapter: { kind: "sleep" }, retry: once }]);
    const { ids } = await h.store.tasks.enqueue({
      tasks: [{ persona: "sleeper", title: "short work, long timeout", payload: { ms: 200 }, policy: { timeoutMs: 3_000_000_000 } }],
      now: Date.now(),
    });
    let aborted = 0;
    h.supervisor.events.on("task:aborting", () => aborted++);
    const done = finished(h.supervisor.events, 1);
    await h.supervisor.start();
    expect((await done)[0]!.outcome).toBe("completed");
    expect(aborted).toBe(0);
    expect((await h.store.tasks.get({ taskId: ids[0]! })).status).toBe("completed");
    expect(overflows).toEqual([]);
  });

  it("keeps a sleep adapter of 35 days asleep until its own 300 ms timeout ends it", async () => {
    h = await harness([{ id: "sleeper", adapter: { kind: "sleep" }, timeoutMs: 300, retry: once }], { supervisor: { abortGraceMs: 10_000 } });
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "sleeper", title: "sleeps 35 days", payload: { ms: 3_000_000_000 } }], now: Date.now() });
    const reasons: string[] = [];
    h.supervisor.events.on("task:aborting", (e) => reasons.push(e.reason));
    const done = finished(h.supervisor.events, 1);
    await h.supervisor.start();
    expect((await done)[0]!.outcome).toBe("failed");
    expect(reasons).toEqual(["timeout"]);
    expect((await h.store.tasks.get({ taskId: ids[0]! })).error?.code).toBe("TIMEOUT");
  });
});
