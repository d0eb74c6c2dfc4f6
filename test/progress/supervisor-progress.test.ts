import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { readStatus, renderStatus } from "../../src/progress/index.js";
// The supervisor runs adapters on worker threads, which load the built JS: take it from dist/ (npm test builds first).
import { Supervisor } from "../helpers/built-supervisor.js";
import { waitFor } from "../helpers/events.js";
import { personasFrom, tempStore } from "../metrics/helpers.js";

const PERSONAS = [{ id: "builder", name: "Builder", adapter: { kind: "flaky", failTimes: 0 }, concurrency: 2, retry: { maxAttempts: 1 } }];

describe("progress people can see", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("shows an adapter's reported fraction and message for its running task, as the supervisor stored it", async () => {
    const t = await tempStore({ personas: PERSONAS, now: Date.now() });
    cleanups.push(t.cleanup);
    const { store } = t;
    const config = loadConfig({ dbPath: t.path, personasDir: t.dir, concurrency: 2, threads: 1, pollIntervalMs: 20, shutdownGraceMs: 0 }, {});
    const supervisor = new Supervisor({ store, personas: personasFrom(PERSONAS), config, abortGraceMs: 100 });
    // The flaky adapter with failTimes 0 works for payload.ms, reporting "implementing i/4" at each quarter.
    const [taskId] = (await store.tasks.enqueue({ tasks: [{ persona: "builder", title: "build it", payload: { ms: 8_000 } }], now: Date.now() })).ids;
    const progressed = waitFor(store.events, "task:progress", (e) => e.taskId === taskId);
    await supervisor.start();
    cleanups.push(() => supervisor.stop("test"));
    await progressed;

    const snapshot = await readStatus(store, { now: Date.now() });
    expect(snapshot.personas).toEqual([expect.objectContaining({ persona: "builder", done: 0, total: 1, running: 1 })]);
    expect(snapshot.running).toEqual([expect.objectContaining({ id: taskId, progress: 0.25, progressMessage: "implementing 1/4" })]);
    expect(renderStatus(snapshot, { ascii: true }).at(-1)).toBe(`  #${taskId} builder attempt 1  [###-------]  25%  build it: implementing 1/4`);
  });
});
