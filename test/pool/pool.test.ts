import { afterEach, describe, expect, it } from "vitest";
import { WorkerPool } from "../../src/pool/pool.js";
import type { WorkerTask } from "../../src/pool/protocol.js";

let pool: WorkerPool | null = null;
afterEach(async () => {
  await pool?.close({ force: true });
  pool = null;
});

function sleepTask(id: number, ms: number, attempt = 1): WorkerTask {
  return { id, title: `sleep ${id}`, description: "", persona: "sleeper", payload: { ms }, priority: 0, parentId: null, attempt, maxAttempts: 3, timeoutMs: 60_000, dependencies: [] };
}

function sleeperPool(concurrency: number): WorkerPool {
  return new WorkerPool({
    threads: 1,
    concurrency,
    init: { personas: [{ id: "sleeper", name: "sleeper", definition: "", adapter: { kind: "sleep" }, dir: null }], personasDir: "/", allowAbsoluteModules: false, maxPayloadBytes: 1 << 20, logLevel: "silent" },
  });
}

describe("worker pool", () => {
  it("returns each outcome of a shared message as its task settles, not when the slowest one does", async () => {
    pool = sleeperPool(4);
    pool.start();
    const order: number[] = [];
    const runs = pool.runTasks([sleepTask(1, 2_000), sleepTask(2, 10)], () => "sleep");
    const fast = await runs[1]!.outcome.then((o) => (order.push(o.taskId), o));
    expect(fast).toMatchObject({ taskId: 2, ok: true });
    expect(pool.running).toBe(1); // the slow one still runs
    pool.abort([1], { name: "RosterError", code: "ABORTED", message: "test over", retryable: false });
    expect(await runs[0]!.outcome).toMatchObject({ taskId: 1, ok: false, aborted: true });
  });

  it("frees a shared message's slot once all its tasks settled, even before the message's own response arrives", async () => {
    // One slot: every message needs it, so a slot held until the response came back
    // would fail the next runTasks with "more than 1 batches in flight".
    pool = sleeperPool(1);
    pool.start();
    let id = 0;
    for (let round = 0; round < 100; round++) {
      const runs = pool.runTasks([sleepTask(++id, 0), sleepTask(++id, 0)], () => "sleep");
      const outcomes = await Promise.all(runs.map((r) => r.outcome));
      expect(outcomes.every((o) => o.ok)).toBe(true);
    }
  });

  it("does not settle a task's next attempt with the outcome its earlier attempt's message brings back late", async () => {
    pool = sleeperPool(4);
    pool.start();
    // Task 1 settles at once and is reported ahead; its message's response waits for task 2.
    const first = pool.runTasks([sleepTask(1, 0), sleepTask(2, 300)], () => "sleep");
    expect(await first[0]!.outcome).toMatchObject({ taskId: 1, ok: true, result: { sleptMs: 0 } });
    // Task 1 again (its retry) while that response is still on its way.
    const [retry] = pool.runTasks([sleepTask(1, 600, 2)], () => "sleep");
    expect(await first[1]!.outcome).toMatchObject({ taskId: 2, ok: true });
    expect(await retry!.outcome).toMatchObject({ taskId: 1, ok: true, result: { sleptMs: 600 } });
  });
});
