import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

/** Resolves once `path` exists (an adapter fixture's mark that it runs); the bound is a safety net, not a wait. */
async function marked(path: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} not made within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function sleeperOptions(concurrency: number): ConstructorParameters<typeof WorkerPool>[0] {
  return {
    threads: 1,
    concurrency,
    init: { personas: [{ id: "sleeper", name: "sleeper", definition: "", adapter: { kind: "sleep" }, dir: null }], personasDir: "/", allowAbsoluteModules: false, maxPayloadBytes: 1 << 20, logLevel: "silent" },
  };
}

function sleeperPool(concurrency: number): WorkerPool {
  return new WorkerPool(sleeperOptions(concurrency));
}

describe("worker pool", () => {
  it("is ready once every thread is up with its adapters loaded, before any task, not when its threads are merely created", async () => {
    // A module adapter that leaves a mark when it is imported: a thread sleeps between piscina's
    // messages (Atomics.wait), so an import begun on its own at start never finished before a task came.
    const dir = mkdtempSync(join(tmpdir(), "roster-pool-warm-"));
    const marks = join(dir, "marks");
    mkdirSync(marks);
    writeFileSync(
      join(dir, "marked.mjs"),
      `import { writeFileSync } from "node:fs";\nimport { threadId } from "node:worker_threads";\nwriteFileSync(${JSON.stringify(marks)} + "/" + threadId, "");\nexport async function run() { return { ok: true }; }\n`,
    );
    try {
      pool = new WorkerPool({
        threads: 2,
        concurrency: 4,
        init: { personas: [{ id: "marked", name: "marked", definition: "", adapter: { kind: "module", path: "marked.mjs" }, dir: null }], personasDir: dir, allowAbsoluteModules: false, maxPayloadBytes: 1 << 20, logLevel: "silent" },
      });
      pool.start();
      // Threads boot for tens of ms and answer through messages, which cannot arrive in this turn.
      expect(pool.threadsUp).toBe(0);
      await pool.ready();
      expect(pool.threadsUp).toBe(2);
      expect(readdirSync(marks)).toHaveLength(2); // each thread imported the module, no task sent yet
      await pool.ready(); // at once, and again
      const [run] = pool.runTasks([{ ...sleepTask(1, 0), persona: "marked" }], () => "module");
      expect(await run!.outcome).toMatchObject({ taskId: 1, ok: true, resultJson: '{"ok":true}' });
      expect(readdirSync(marks)).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("stops waiting for its threads after the given wait, and when it is closed", async () => {
    pool = sleeperPool(1);
    pool.start();
    await pool.ready(1); // resolves after 1 ms whether or not the thread is up
    const closing = sleeperPool(1);
    closing.start();
    const waiting = closing.ready(60_000);
    await closing.close({ force: true });
    await waiting;
    await expect(closing.ready()).rejects.toMatchObject({ code: "INVALID_STATE" });
  });

  it("returns each outcome of a shared message as its task settles, not when the slowest one does", async () => {
    pool = sleeperPool(4);
    pool.start();
    const order: number[] = [];
    const runs = pool.runTasks([sleepTask(1, 2_000), sleepTask(2, 10)], () => "sleep");
    const fast = await runs[1]!.outcome.then((o) => (order.push(o.taskId), o));
    expect(fast).toMatchObject({ taskId: 2, ok: true });
    expect(pool.running).toBe(1); // the slow one still runs
    pool.abort([runs[0]!.runId], { name: "RosterError", code: "ABORTED", message: "test over", retryable: false });
    expect(await runs[0]!.outcome).toMatchObject({ taskId: 1, ok: false, aborted: true });
  });

  it("brings an abort's reason back as the main thread made it, not rebuilt on the way", async () => {
    pool = sleeperPool(2);
    pool.start();
    const [run] = pool.runTasks([sleepTask(3, 60_000)], () => "sleep");
    // A code the errors table does not know and a stack of its own: rebuilding it as an Error and back turned the code into ADAPTER_FAILED.
    const sent = { name: "HostAbort", code: "HOST_SAID_STOP", message: "stop: the host asked", stack: "HostAbort: stop\n    at the host", retryable: false, details: { host: "b", at: 5 } };
    await new Promise((r) => setTimeout(r, 50));
    pool.abort([run!.runId], sent);
    const outcome = await run!.outcome;
    expect(outcome).toEqual({ taskId: 3, ok: false, aborted: true, error: sent });
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
    expect(await first[0]!.outcome).toMatchObject({ taskId: 1, ok: true, resultJson: JSON.stringify({ sleptMs: 0 }) });
    // Task 1 again (its retry) while that response is still on its way.
    const [retry] = pool.runTasks([sleepTask(1, 600, 2)], () => "sleep");
    expect(await first[1]!.outcome).toMatchObject({ taskId: 2, ok: true });
    expect(await retry!.outcome).toMatchObject({ taskId: 1, ok: true, resultJson: JSON.stringify({ sleptMs: 600 }) });
  });
});

describe("worker pool: an abort or a termination charges only the attempt it was meant for", () => {
  const reason = { name: "RosterError", code: "ABORTED", message: "cancelled by the user", retryable: false };

  it("never aborts a task's next attempt with its earlier attempt's abort, whichever thread runs it", async () => {
    const waiter = new URL("../fixtures/adapter-thread.mjs", import.meta.url).pathname;
    pool = new WorkerPool({
      threads: 2,
      concurrency: 8,
      init: {
        personas: [{ id: "sleeper", name: "sleeper", definition: "", adapter: { kind: "module", path: waiter }, dir: null }],
        personasDir: "/",
        allowAbsoluteModules: true,
        maxPayloadBytes: 1 << 20,
        logLevel: "silent",
      },
    });
    pool.start();
    const settle = () => new Promise((r) => setTimeout(r, 30));
    // piscina sends a message to the first idle thread, else the least busy one. Thread A
    // gets a long task; attempt 1 of task 7 then goes to thread B.
    const longA = pool.runTasks([sleepTask(900, 60_000)], () => "module");
    await settle();
    const [first] = pool.runTasks([sleepTask(7, 60_000, 1)], () => "module");
    await settle();
    // The user cancels it: the abort reaches both threads, and thread A has no task 7.
    pool.abort([first!.runId], reason);
    expect(await first!.outcome).toMatchObject({ ok: false, aborted: true });
    // Thread B gets another long task, so attempt 2 (cancel + retry) goes to thread A.
    const longB = pool.runTasks([sleepTask(901, 60_000)], () => "module");
    await settle();
    const [second] = pool.runTasks([sleepTask(7, 100, 2)], () => "module");
    const secondOutcome = await second!.outcome;
    expect(secondOutcome).toMatchObject({ taskId: 7, ok: true });
    expect(JSON.parse((secondOutcome as { resultJson: string }).resultJson)).toMatchObject({ sleptMs: 100 });
    pool.abort([...longA, ...longB].map((r) => r.runId), reason);
    await Promise.all([...longA, ...longB].map((r) => r.outcome));
  });

  it("releases, and does not fail, the innocent tasks that shared a terminated thread, on this attempt and on the next", async () => {
    const spin = new URL("../fixtures/adapter-spin.mjs", import.meta.url).pathname;
    pool = new WorkerPool({
      threads: 1,
      concurrency: 16,
      abortGraceMs: 100,
      init: {
        personas: [
          { id: "sleeper", name: "sleeper", definition: "", adapter: { kind: "module", path: new URL("../fixtures/adapter-thread.mjs", import.meta.url).pathname }, dir: null },
          { id: "spinner", name: "spinner", definition: "", adapter: { kind: "module", path: spin }, dir: null },
        ],
        personasDir: "/",
        allowAbsoluteModules: true,
        maxPayloadBytes: 1 << 20,
        logLevel: "silent",
      },
    });
    pool.start();
    const dir = mkdtempSync(join(tmpdir(), "roster-pool-spin-"));
    const spinning = join(dir, "spinning");
    const hung = pool.runTasks([{ ...sleepTask(1, 0), persona: "spinner", payload: { mark: spinning } }], () => "module");
    const innocents = pool.runTasks([2, 3, 4, 5].map((id) => sleepTask(id, 5_000)), () => "module");
    // The abort must find the spinner spinning (an abort while its adapter still loads is its outcome
    // at once, with no thread terminated): wait for its mark, not a fixed time a loaded machine outlasts.
    await marked(spinning);
    rmSync(dir, { recursive: true, force: true });
    pool.abort([hung[0]!.runId], { ...reason, code: "TIMEOUT", message: "timed out", retryable: true });
    expect(await hung[0]!.outcome).toMatchObject({ ok: false, aborted: true, error: { code: "TIMEOUT" } });
    for (const outcome of await Promise.all(innocents.map((r) => r.outcome))) expect(outcome).toMatchObject({ ok: false, released: true });
    // Given back and claimed again at once: they run, wherever piscina sends them.
    const again = pool.runTasks([2, 3, 4, 5].map((id) => sleepTask(id, 50, 2)), () => "module");
    for (const outcome of await Promise.all(again.map((r) => r.outcome))) {
      expect(outcome.ok || "released" in outcome, JSON.stringify(outcome).slice(0, 300)).toBe(true);
    }
  });

  it("does not start an adapter whose attempt was aborted while the adapter loaded: the abort is its outcome at once", async () => {
    // An abort that lands during the adapter's import (or before the task reached its thread)
    // would hand the adapter a signal already aborted, whose 'abort' event never fires: an adapter
    // that waits for it runs on until its thread is terminated (seen in a clean-checkout run under load).
    const dir = mkdtempSync(join(tmpdir(), "roster-pool-import-"));
    const mark = join(dir, "ran");
    pool = new WorkerPool({
      threads: 1,
      concurrency: 2,
      abortGraceMs: 100,
      init: {
        personas: [{ id: "heavy", name: "heavy", definition: "", adapter: { kind: "module", path: new URL("../fixtures/adapter-slow-import.mjs", import.meta.url).pathname }, dir: null }],
        personasDir: "/",
        allowAbsoluteModules: true,
        maxPayloadBytes: 1 << 20,
        logLevel: "silent",
      },
    });
    pool.start();
    try {
      const [task] = pool.runTasks([{ ...sleepTask(1, 0), persona: "heavy", payload: { mark } }], () => "module");
      await new Promise((r) => setTimeout(r, 100));
      const abortedAt = performance.now();
      pool.abort([task!.runId], { ...reason, code: "TIMEOUT", message: "timed out", retryable: true });
      // Its own reason, as sent (a thread terminated for it would add to the message), once the import is over.
      expect(await task!.outcome).toEqual({ taskId: 1, ok: false, aborted: true, error: { ...reason, code: "TIMEOUT", message: "timed out", retryable: true } });
      expect(performance.now() - abortedAt).toBeLessThan(5_000);
      expect(readdirSync(dir), "the adapter's run was never called").toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("does not terminate a thread whose aborted adapter is still stopping with its event loop free, so its thread-mates run on", async () => {
    // On a starved machine an adapter's stop (removing its home and worktree, ending its process tree)
    // takes longer than the grace; the thread still answers, so ending it would only cost its
    // thread-mates their runs (docs/ARCHITECTURE.md, rule 12; seen under load 20 on 2 cores).
    pool = new WorkerPool({
      threads: 1,
      concurrency: 8,
      abortGraceMs: 100,
      init: {
        personas: [
          { id: "sleeper", name: "sleeper", definition: "", adapter: { kind: "module", path: new URL("../fixtures/adapter-thread.mjs", import.meta.url).pathname }, dir: null },
          { id: "stopper", name: "stopper", definition: "", adapter: { kind: "module", path: new URL("../fixtures/adapter-slow-stop.mjs", import.meta.url).pathname }, dir: null },
        ],
        personasDir: "/",
        allowAbsoluteModules: true,
        maxPayloadBytes: 1 << 20,
        logLevel: "silent",
      },
    });
    pool.start();
    const dir = mkdtempSync(join(tmpdir(), "roster-pool-stop-"));
    const running = join(dir, "running");
    const [slow] = pool.runTasks([{ ...sleepTask(1, 60_000), persona: "stopper", payload: { ms: 60_000, stopMs: 600, mark: running } }], () => "module");
    const mates = pool.runTasks([2, 3].map((id) => sleepTask(id, 1_500)), () => "module");
    // The abort must reach a running adapter (one aborted while it loads never runs, and its outcome comes at once).
    await marked(running);
    rmSync(dir, { recursive: true, force: true });
    const abortedAt = performance.now();
    pool.abort([slow!.runId], { ...reason, code: "TIMEOUT", message: "timed out", retryable: true });
    const outcome = await slow!.outcome;
    // Its own abort reason, as sent: the thread was not terminated, the adapter stopped on its own (6 graces later).
    expect(outcome).toEqual({ taskId: 1, ok: false, aborted: true, error: { ...reason, code: "TIMEOUT", message: "timed out", retryable: true } });
    expect(performance.now() - abortedAt).toBeGreaterThanOrEqual(550);
    for (const mate of await Promise.all(mates.map((r) => r.outcome))) expect(mate, JSON.stringify(mate).slice(0, 300)).toMatchObject({ ok: true });
  });

  it("holds two attempts of one task at once (one still stopping after its abort, its retry) and settles each with its own outcome", async () => {
    const waiter = new URL("../fixtures/adapter-thread.mjs", import.meta.url).pathname;
    pool = new WorkerPool({
      threads: 1,
      concurrency: 4,
      init: {
        personas: [{ id: "sleeper", name: "sleeper", definition: "", adapter: { kind: "module", path: waiter }, dir: null }],
        personasDir: "/",
        allowAbsoluteModules: true,
        maxPayloadBytes: 1 << 20,
        logLevel: "silent",
      },
    });
    pool.start();
    const [first] = pool.runTasks([sleepTask(5, 60_000, 1)], () => "module");
    pool.abort([first!.runId], reason);
    const [second] = pool.runTasks([sleepTask(5, 50, 1)], () => "module");
    expect(await first!.outcome).toMatchObject({ taskId: 5, ok: false, aborted: true });
    const secondOutcome = await second!.outcome;
    expect(secondOutcome).toMatchObject({ taskId: 5, ok: true });
    expect(JSON.parse((secondOutcome as { resultJson: string }).resultJson)).toMatchObject({ sleptMs: 50 });
  });
});
