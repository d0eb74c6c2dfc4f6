import { afterEach, describe, expect, it, vi } from "vitest";
import { IntervalService, ServiceGroup, type Service } from "../src/service.js";
import { harness, type Harness } from "./supervisor/helpers.js";

/** A service that writes what happens to it into `log`; `failStart` / `failStop` make it throw. */
function recorder(name: string, log: string[], options: { failStart?: boolean; failStop?: boolean; asyncStop?: boolean } = {}): Service {
  return {
    name,
    start: async () => {
      await Promise.resolve();
      if (options.failStart === true) throw new Error(`${name} cannot start`);
      log.push(`start ${name}`);
    },
    stop: async () => {
      if (options.asyncStop === true) await new Promise((resolve) => setTimeout(resolve, 5));
      if (options.failStop === true) throw new Error(`${name} cannot stop`);
      log.push(`stop ${name}`);
    },
  };
}

describe("a service group", () => {
  it("starts in the declared order and stops in the reverse one, waiting for each stop", async () => {
    const log: string[] = [];
    const group = new ServiceGroup([recorder("a", log), recorder("b", log, { asyncStop: true }), recorder("c", log)], () => {});
    await group.start();
    await group.stop();
    expect(log).toEqual(["start a", "start b", "start c", "stop c", "stop b", "stop a"]);
  });

  it("rolls back a failed start: the services already started stop in reverse order, later ones never start, and the error is rethrown", async () => {
    const log: string[] = [];
    const group = new ServiceGroup([recorder("a", log), recorder("b", log), recorder("c", log, { failStart: true }), recorder("d", log)], () => {});
    await expect(group.start()).rejects.toThrow("c cannot start");
    expect(log).toEqual(["start a", "start b", "stop b", "stop a"]);
    // Nothing is left to stop.
    await group.stop();
    expect(log).toHaveLength(4);
  });

  it("reports a stop that throws and still stops the others", async () => {
    const log: string[] = [];
    const reports: Array<[string, string]> = [];
    const group = new ServiceGroup([recorder("a", log), recorder("b", log, { failStop: true }), recorder("c", log)], (where, error) => reports.push([where, error.message]));
    await group.start();
    await group.stop();
    expect(log).toEqual(["start a", "start b", "start c", "stop c", "stop a"]);
    expect(reports).toEqual([["b.stop", "b cannot stop"]]);
  });

  it("refuses a service named twice", () => {
    expect(() => new ServiceGroup([recorder("a", []), recorder("a", [])], () => {})).toThrow(/"a" is given twice/);
  });
});

class Ticker extends IntervalService {
  readonly name = "ticker";
  runs = 0;
  release: (() => void) | null = null;
  fail = false;
  protected async run(): Promise<void> {
    this.runs++;
    if (this.fail) throw new Error("tick failed");
    await new Promise<void>((resolve) => (this.release = resolve));
  }
}

describe("an interval service", () => {
  afterEach(() => vi.useRealTimers());

  it("ticks every interval without overlapping, reports a failed tick as <name>.tick, and stop waits for the running tick", async () => {
    vi.useFakeTimers();
    const reports: string[] = [];
    const ticker = new Ticker((where, error) => reports.push(`${where}: ${error.message}`), 100);
    ticker.start();
    vi.advanceTimersByTime(100);
    expect(ticker.runs).toBe(1);
    // Due again while the first still runs: it is not started twice.
    vi.advanceTimersByTime(100);
    expect(ticker.runs).toBe(1);
    ticker.release!();
    await vi.advanceTimersByTimeAsync(100);
    expect(ticker.runs).toBe(2);
    let stopped = false;
    const stopping = ticker.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    ticker.release!();
    await stopping;
    // No timer is left: no more ticks.
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ticker.runs).toBe(2);

    ticker.fail = true;
    await ticker.tick();
    expect(reports).toEqual(["ticker.tick: tick failed"]);
  });
});

describe("an interval service's interval", () => {
  it("is refused past 2^31 - 1 ms, which Node would run every 1 ms, at construction and when set", () => {
    expect(() => new Ticker(() => {}, 3_000_000_000)).toThrow(/^intervalMs: must be a number from 1 to 2147483647, got 3000000000$/);
    const ticker = new Ticker(() => {}, 2 ** 31 - 1);
    expect(() => ticker.setIntervalMs(3_000_000_000)).toThrow(RangeError);
    expect(ticker.intervalMs).toBe(2 ** 31 - 1);
  });
});

describe("the supervisor's services", () => {
  let h: Harness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("are declared in one start order: the agent and pool first, the wake-ups and the claim loop last (so a stop ends claiming first)", async () => {
    h = await harness([{ id: "worker", adapter: { kind: "echo" } }]);
    expect(h.supervisor.serviceOrder).toEqual(["agent", "pool", "leaseKeeper", "completer", "progressWriter", "attempts", "reaper", "scheduler", "stallGuard", "personaReloader", "gateWaker", "waker", "claimLoop"]);
  });

  it("leave out, for a supervisor serving one task, the services that act on other tasks", async () => {
    h = await harness([{ id: "worker", adapter: { kind: "echo" } }], { supervisor: { taskId: 1 } });
    expect(h.supervisor.serviceOrder).toEqual(["agent", "pool", "leaseKeeper", "completer", "progressWriter", "attempts", "gateWaker", "waker", "claimLoop"]);
  });
});
