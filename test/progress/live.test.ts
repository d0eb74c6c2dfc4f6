import { afterEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { createLogger } from "../../src/logging/index.js";
import { LiveStatus } from "../../src/progress/index.js";
import { tempStore } from "../metrics/helpers.js";

describe("the live status view", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function storeWithWork() {
    const clock = new ManualClock();
    const t = await tempStore();
    cleanups.push(t.cleanup);
    await t.store.tasks.enqueue({ tasks: [{ persona: "coder", title: "a" }, { persona: "coder", title: "b" }], now: clock.now() });
    const [task] = await t.store.tasks.claim({ persona: "coder", agentId: "a1", now: clock.now() });
    await t.store.tasks.startIfLeased({ taskId: task!.id, leaseToken: task!.leaseToken, now: clock.now() });
    await t.store.tasks.progressIfLeased({ taskId: task!.id, leaseToken: task!.leaseToken, fraction: 0.4, message: "halfway-ish", now: clock.now() });
    return { ...t, clock, task: task! };
  }

  it("draws the summary in a terminal and redraws it in place", async () => {
    const { store, clock, task } = await storeWithWork();
    let screen = "";
    const view = new LiveStatus({ store, mode: "terminal", clock, out: { write: (s: string) => (screen += s), columns: 100 }, intervalMs: 60_000 });
    cleanups.push(async () => view.dispose());
    await view.refresh();
    expect(screen).toContain("0/2 done");
    expect(screen).toContain("40%  a: halfway-ish");

    await store.tasks.completeIfLeased({ taskId: task.id, leaseToken: task.leaseToken, now: clock.now() });
    screen = "";
    await view.refresh();
    // Back up over the previous block (its 5 lines), clear, draw the new one.
    expect(screen.startsWith("\x1b[5F\x1b[0J")).toBe(true);
    expect(screen).toContain("1/2 done");
  });

  it("prints log lines above the block and redraws the block under them", async () => {
    const { store, clock } = await storeWithWork();
    let screen = "";
    const view = new LiveStatus({ store, mode: "terminal", clock, out: { write: (s: string) => (screen += s) }, intervalMs: 60_000 });
    cleanups.push(async () => view.dispose());
    await view.refresh();
    const logger = createLogger({ pretty: false, destination: view });
    screen = "";
    logger.info("a log line");
    const erase = screen.indexOf("\x1b[0J");
    const log = screen.indexOf("a log line");
    const redraw = screen.indexOf("0/2 done");
    expect(erase).toBeGreaterThanOrEqual(0);
    expect(log).toBeGreaterThan(erase);
    expect(redraw).toBeGreaterThan(log);
  });

  it("logs one plain line per change when not in a terminal", async () => {
    const { store, clock, task } = await storeWithWork();
    const lines: string[] = [];
    const logger = createLogger({ pretty: false, destination: { write: (l: string) => lines.push(l) } });
    const view = new LiveStatus({ store, mode: "lines", clock, logger, intervalMs: 60_000 });
    cleanups.push(async () => view.dispose());
    await view.refresh();
    await view.refresh();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: "status", done: { coder: "0/2" }, running: [{ taskId: task.id, progress: 0.4, message: "halfway-ish" }] });
    expect(lines[0]).not.toContain("\x1b[");

    await store.tasks.completeIfLeased({ taskId: task.id, leaseToken: task.leaseToken, now: clock.now() });
    await view.stop();
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[1]!)).toMatchObject({ done: { coder: "1/2" }, running: [] });
  });

  it("refuses lines mode without a logger", async () => {
    const { store } = await storeWithWork();
    expect(() => new LiveStatus({ store, mode: "lines" })).toThrow(/needs a logger/);
  });
});
