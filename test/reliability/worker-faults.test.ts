import { afterEach, describe, expect, it } from "vitest";
import { ABORT_SILENCE_MAX_MS } from "../../src/pool/pool-types.js";
import type { ConfigInput } from "../../src/config.js";
import type { TaskRecord } from "../../src/store/index.js";
import { finished, harness, type Harness } from "../supervisor/helpers.js";

/**
 * Worker faults (issue 7, part 3): adapters that misbehave in every way a user
 * module can, run by the real supervisor on real worker threads. Each fault must
 * fail its own attempt with a clear recorded error, and the supervisor must keep
 * serving: a normal task enqueued after it still completes.
 */

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const once = { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 };

async function start(options: { config?: Partial<ConfigInput>; abortGraceMs?: number } = {}): Promise<Harness> {
  h = await harness(
    [
      { id: "faulty", adapter: { kind: "module", path: "./adapter-fault.mjs" }, retry: once },
      { id: "echo", adapter: { kind: "echo" } },
    ],
    { fixtures: ["adapter-fault.mjs"], supervisor: { abortGraceMs: options.abortGraceMs ?? 300 }, ...(options.config ? { config: options.config } : {}) },
  );
  await h.supervisor.start();
  return h;
}

/** Enqueues one faulty task, waits until its attempt is settled, and returns the task as stored. */
async function runFault(h: Harness, fault: string, timeoutMs?: number): Promise<TaskRecord> {
  const done = finished(h.supervisor.events, 1);
  const { ids } = await h.store.tasks.enqueue({
    tasks: [{ persona: "faulty", title: fault, payload: { fault }, ...(timeoutMs === undefined ? {} : { policy: { timeoutMs } }) }],
    now: Date.now(),
  });
  const [run] = await done;
  expect(run!.taskId).toBe(ids[0]);
  expect(run!.outcome).toBe("failed");
  const task = await h.store.tasks.get({ taskId: ids[0]! });
  expect(task.status).toBe("failed");
  // The supervisor's event (metrics, logs) reports what the store recorded.
  expect(run!.errorCode).toBe(task.error?.code);
  return task;
}

/** The supervisor still serves: fresh echo tasks, enough to reach every thread (a replacement included), complete. */
async function expectStillServing(h: Harness): Promise<void> {
  const done = finished(h.supervisor.events, 6);
  const { ids } = await h.store.tasks.enqueue({
    tasks: Array.from({ length: 6 }, (_, i) => ({ persona: "echo", title: `after ${i}`, payload: { i } })),
    now: Date.now(),
  });
  const runs = await done;
  expect(runs.map((r) => r.outcome)).toEqual(Array(6).fill("completed"));
  for (const id of ids) expect((await h.store.tasks.get({ taskId: id })).result).toEqual({ echo: { i: ids.indexOf(id) } });
  expect(h.supervisor.isRunning).toBe(true);
}

describe("worker faults: thrown values and rejections", () => {
  it("fails a task whose adapter throws a string with ADAPTER_FAILED quoting the string", async () => {
    const h = await start();
    const task = await runFault(h, "throw-string");
    expect(task.status).toBe("failed");
    expect(task.error).toMatchObject({ code: "ADAPTER_FAILED", message: 'the adapter threw a non-Error value: "a plain string, not an Error"' });
    await expectStillServing(h);
  });

  it("fails a task whose adapter throws a plain object with ADAPTER_FAILED showing the object as JSON", async () => {
    const h = await start();
    const task = await runFault(h, "throw-object");
    expect(task.error).toMatchObject({ code: "ADAPTER_FAILED", message: 'the adapter threw a non-Error value: {"reason":"an object, not an Error","n":7}' });
    await expectStillServing(h);
  });

  it("fails a task whose adapter throws undefined with ADAPTER_FAILED saying so", async () => {
    const h = await start();
    const task = await runFault(h, "throw-undefined");
    expect(task.error).toMatchObject({ code: "ADAPTER_FAILED", message: "the adapter threw a non-Error value: undefined" });
    await expectStillServing(h);
  });

  it("fails a task whose adapter rejects with the rejection's own name and message", async () => {
    const h = await start();
    const task = await runFault(h, "reject");
    expect(task.error).toMatchObject({ code: "ADAPTER_FAILED", name: "TypeError", message: "rejected on purpose" });
    await expectStillServing(h);
  });
});

describe("worker faults: adapters that do not stop", () => {
  it("times out an adapter that never settles and ignores its signal, terminating its thread once its graces are spent", async () => {
    const h = await start();
    const task = await runFault(h, "never-settle", 200);
    expect(task.error?.code).toBe("TIMEOUT");
    // Its thread kept answering the abort (its event loop was free), so it had the whole stop bound, not one grace (src/pool/pool.ts).
    expect(task.error?.message).toMatch(new RegExp(`timed out after 200 ms \\(the adapter did not stop within ${2 * ABORT_SILENCE_MAX_MS} ms; its thread was terminated\\)$`));
    await expectStillServing(h);
  });

  it("times out an adapter spinning synchronously in while(true), terminating its thread", async () => {
    const h = await start();
    const task = await runFault(h, "spin", 200);
    expect(task.error?.code).toBe("TIMEOUT");
    // A blocked thread never answers the abort: it is terminated once it has been silent that long.
    expect(task.error?.message).toMatch(new RegExp(`did not stop within ${ABORT_SILENCE_MAX_MS} ms; its thread was terminated\\)$`));
    await expectStillServing(h);
  });
});

describe("worker faults: adapters that end their thread", () => {
  it("fails only the caller of process.exit() inside run, sparing a task on the same thread", async () => {
    // One thread, so the well-behaved sleeper certainly shares it with the caller.
    const h = await start({ config: { threads: 1 } });
    const sleeperDone = finished(h.supervisor.events, 1, (e) => e.outcome === "completed");
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "faulty", title: "sleeps", payload: { fault: "sleep", ms: 300 } }], now: Date.now() });
    const task = await runFault(h, "exit");
    expect(task.error).toMatchObject({ code: "ADAPTER_FAILED", retryable: false, message: "the adapter called process.exit(3), which a worker thread does not allow" });
    const [sleeper] = await sleeperDone;
    expect(sleeper!.taskId).toBe(ids[0]);
    expect((await h.store.tasks.get({ taskId: ids[0]! })).result).toEqual({ slept: 300 });
    await expectStillServing(h);
  });

  it("fails the task with WORKER_CRASHED naming process.exit when it is called from a callback and ends the thread", async () => {
    const h = await start();
    const task = await runFault(h, "exit-later");
    expect(task.error?.code).toBe("WORKER_CRASHED");
    expect(task.error?.message).toBe("worker thread failed: the adapter called process.exit(4), which a worker thread does not allow");
    await expectStillServing(h);
  });

  it("fails a task whose adapter exceeds the worker heap limit with WORKER_CRASHED naming the memory limit", async () => {
    const h = await start({ config: { workerHeapLimitMb: 64 } });
    const task = await runFault(h, "out-of-memory");
    expect(task.error?.code).toBe("WORKER_CRASHED");
    expect(task.error?.message).toMatch(/^worker thread failed: .*memory limit/);
    await expectStillServing(h);
  });
});

describe("worker faults: results that are not data", () => {
  const cases: Array<[string, RegExp]> = [
    ["return-function", /^result: not serialisable as JSON \(a function\)$/],
    ["return-symbol", /^result: not serialisable as JSON \(a symbol\)$/],
    ["return-bigint", /^result: not serialisable as JSON \(Do not know how to serialize a BigInt\)$/],
    ["return-nested-bigint", /^result: not serialisable as JSON \(Do not know how to serialize a BigInt\)$/],
    ["return-circular", /^result: not serialisable as JSON \(Converting circular structure to JSON.*\)$/s],
  ];
  for (const [fault, message] of cases) {
    it(`fails a task whose adapter returns a value that is not JSON (${fault}) with ADAPTER_OUTPUT_INVALID`, async () => {
      const h = await start();
      const task = await runFault(h, fault);
      expect(task.error?.code).toBe("ADAPTER_OUTPUT_INVALID");
      expect(task.error?.retryable).toBe(false);
      expect(task.error?.message).toMatch(message);
      expect(task.result).toBeNull();
      await expectStillServing(h);
    });
  }
});

describe("worker faults: child tasks that cannot be enqueued", () => {
  it("fails a planner whose child tasks form a cycle, naming the cycle, and enqueues none of them", async () => {
    const h = await start();
    const task = await runFault(h, "children-cycle");
    expect(task.error?.code).toBe("ADAPTER_OUTPUT_INVALID");
    expect(task.error?.message).toMatch(/^adapter output rejected: tasks\[\d+\].*cycle a -> b -> a/);
    expect(await h.store.tasks.list({ parentId: task.id })).toEqual([]);
    await expectStillServing(h);
  });

  it("fails a planner whose child task names an unknown persona, naming it, and enqueues nothing", async () => {
    const h = await start();
    const task = await runFault(h, "children-unknown-persona");
    expect(task.error?.code).toBe("ADAPTER_OUTPUT_INVALID");
    expect(task.error?.message).toMatch(/^adapter output rejected: .*"ghost"/);
    expect(await h.store.tasks.list({ parentId: task.id })).toEqual([]);
    await expectStillServing(h);
  });
});
