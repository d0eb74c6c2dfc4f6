import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { FIXTURES, harness, next, type Harness } from "./helpers.js";

/**
 * Outcomes under the faults users meet (issue 12): every task here can only
 * succeed, so each must end `completed`; a task failed for another's reason, or
 * left ready beside a free slot, fails the test.
 */
let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const once = { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 };

async function waitForStatus(harness: Harness, ids: number[], done: (status: string) => boolean, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const statuses = await Promise.all(ids.map(async (taskId) => (await harness.store.tasks.get({ taskId })).status));
    if (statuses.every(done) || Date.now() > deadline) return statuses;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Another process holding the write lock from `from` to `until` (epoch ms); resolves when it let go. */
function holdLock(dbPath: string, from: number, until: number): Promise<void> {
  const child = spawn(process.execPath, [new URL("hold-lock.mjs", FIXTURES).pathname, dbPath, String(from), String(until)], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`hold-lock exited ${code}`))));
  });
}

describe("supervisor outcomes under faults", () => {
  it("completes tasks cancelled while running and retried at once (an old attempt's abort never reaches the new one)", async () => {
    h = await harness([{ id: "waiter", adapter: { kind: "module", path: "./adapter-thread.mjs" }, retry: once }], { fixtures: ["adapter-thread.mjs"] });
    // Each task's first run waits until it is aborted (and marks firstRunDir/<id> when it starts); the retried run waits 800 ms.
    // A first run of 800 ms could complete before a loaded machine got to its cancel, which then fails: only unfinished tasks can be cancelled.
    const firstRunDir = h.temp.path("first-runs");
    mkdirSync(firstRunDir);
    const { ids } = await h.store.tasks.enqueue({ tasks: Array.from({ length: 6 }, (_, i) => ({ persona: "waiter", title: `t${i}`, payload: { ms: 800, firstRunDir } })), now: Date.now() });
    await h.supervisor.start();
    // Every first run has started (an attempt cancelled before its adapter ran would leave the retry to be the long first run).
    const deadline = Date.now() + 30_000;
    while (!ids.every((id) => existsSync(join(firstRunDir, String(id)))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect(ids.filter((id) => !existsSync(join(firstRunDir, String(id)))), "tasks whose first run has not started").toEqual([]);
    expect(await waitForStatus(h, ids, (s) => s === "in_progress" || s === "claimed", 30_000)).toSatisfy((s: string[]) => s.every((x) => x !== "pending"));
    for (const taskId of ids) await h.store.tasks.cancel({ taskId, by: "test", now: Date.now() });
    for (const taskId of ids) await h.store.tasks.retry({ taskId, by: "test", now: Date.now() });
    const final = await waitForStatus(h, ids, (s) => s === "completed" || s === "failed", 30_000);
    if (final.some((s) => s !== "completed")) console.log(JSON.stringify((await h.store.tasks.get({ taskId: ids[0]!, eventLimit: 50 })).events.map((e) => [e.type, e.data])));
    expect(final).toEqual(ids.map(() => "completed"));
  });

  it("fails only the hung task when its thread is terminated; its innocent thread-mates, and tasks sent to the spinning thread meanwhile, complete", async () => {
    // The hung adapter spins on one of two threads. While it spins, piscina keeps sending new
    // batches to that thread (the least busy one); they never start, and die with the thread
    // when it is terminated: not their fault, so they must be released, not failed.
    h = await harness(
      [
        { id: "spinner", adapter: { kind: "module", path: "./adapter-spin.mjs" }, timeoutMs: 1_500, retry: once },
        { id: "napper", adapter: { kind: "sleep" }, concurrency: 4, retry: once },
      ],
      { fixtures: ["adapter-spin.mjs"], config: { threads: 2 } },
    );
    const hung = await h.store.tasks.enqueue({ tasks: [{ persona: "spinner", title: "hangs" }], now: Date.now() });
    await h.supervisor.start();
    await new Promise((r) => setTimeout(r, 300));
    const innocents = await h.store.tasks.enqueue({
      tasks: Array.from({ length: 30 }, (_, i) => ({ persona: "napper", title: `innocent ${i}`, payload: { ms: 200 } })),
      now: Date.now(),
    });
    const all = [...hung.ids, ...innocents.ids];
    await waitForStatus(h, all, (s) => s === "completed" || s === "failed", 30_000);
    const spinner = await h.store.tasks.get({ taskId: hung.ids[0]! });
    expect(spinner.status).toBe("failed");
    expect(spinner.error?.code).toBe("TIMEOUT");
    const outcomes = await Promise.all(innocents.ids.map(async (taskId) => (await h!.store.tasks.get({ taskId })).status));
    expect(outcomes).toEqual(innocents.ids.map(() => "completed"));
  });

  it("claims again after a claim failed on a write lock held past its retries, with no other write to wake it", async () => {
    h = await harness([{ id: "quick", adapter: { kind: "echo" }, retry: once }], { config: { busyTimeoutMs: 20 } });
    await h.supervisor.start();
    const t0 = Date.now();
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "quick", title: "due during the lock", delayMs: 1_000 }], now: t0 });
    // Held from before the task is due until well past the claim's busy retries (~1.5 s); the holder writes nothing.
    await holdLock(h.dbPath, t0 + 500, t0 + 4_000);
    // A safety bound: with no write to wake it, a loop that did not retry would never claim it.
    const statuses = await waitForStatus(h, ids, (s) => s === "completed", 30_000);
    expect(statuses).toEqual(["completed"]);
  });

  it("claims a task that fell due while the previous claim waited for the write lock", async () => {
    h = await harness([{ id: "quick", adapter: { kind: "echo" }, retry: once }]);
    await h.supervisor.start();
    const t0 = Date.now();
    const { ids } = await h.store.tasks.enqueue({
      tasks: [
        { persona: "quick", title: "first", delayMs: 1_000 },
        { persona: "quick", title: "second", delayMs: 1_060 },
      ],
      now: t0,
    });
    // The lock spans the first run_at: the claim made then waits for it and is short of the second.
    await holdLock(h.dbPath, t0 + 800, t0 + 1_400);
    expect(await waitForStatus(h, ids, (s) => s === "completed", 30_000)).toEqual(["completed", "completed"]);
  });

  it("stops a running attempt at once (not at its next renewal) when another process cancels it, and records it as a cancel", async () => {
    // A long lease: its renewal (every leaseMs/3 = 40 s) is far from the bound below, however loaded the machine.
    h = await harness([{ id: "waiter", adapter: { kind: "module", path: "./adapter-thread.mjs" }, leaseMs: 120_000, retry: once }], {
      fixtures: ["adapter-thread.mjs"],
      config: { pollIntervalMs: 250 },
    });
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "waiter", title: "long", payload: { ms: 50_000 } }], now: Date.now() });
    const started = next(h.supervisor.events, "task:run-started");
    await h.supervisor.start();
    await started;
    await new Promise((r) => setTimeout(r, 100));
    const aborting = next(h.supervisor.events, "task:aborting", () => true, 20_000);
    const finishedRun = next(h.supervisor.events, "task:run-finished", () => true, 20_000);
    const other = await openStore({ path: h.dbPath }); // as `roster cancel` in another terminal
    const cancelledAt = Date.now();
    try {
      await other.tasks.cancel({ taskId: ids[0]!, by: "cli", now: Date.now() });
    } finally {
      await other.close();
    }
    expect((await aborting).reason).toBe("cancelled");
    await finishedRun;
    // The renewal that used to notice it comes only every leaseMs/3 = 40 s; the external-write
    // check takes a file event and one read (well under a second here): half the renewal interval
    // tells the two apart with room for a loaded machine (under load 20 a step can take seconds).
    expect(Date.now() - cancelledAt).toBeLessThan(20_000);
    expect((await h.store.tasks.get({ taskId: ids[0]! })).status).toBe("cancelled");
  });
});
