import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { eventTypes, finished, harness, next, type Harness } from "./helpers.js";

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe("supervisor: leases", () => {
  it("aborts an attempt whose lease another process took, and discards its result", async () => {
    h = await harness([
      { id: "sleeper", adapter: { kind: "sleep" }, leaseMs: 300, retry: { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 } },
    ]);
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "sleeper", title: "long", payload: { ms: 60_000 } }], now: Date.now() });
    const started = next(h.supervisor.events, "task:run-started");
    const aborting = next(h.supervisor.events, "task:aborting");
    const done = finished(h.supervisor.events, 1);
    await h.supervisor.start();
    await started;

    // A reaper that judged this supervisor dead (it was frozen, say) has given the task to
    // another holder: the lease token in the row is no longer ours.
    const other = new Database(h.dbPath);
    try {
      other.prepare("UPDATE task_status SET lease_token = 'taken', assigned_agent_id = 'someone-else' WHERE task_id = ?").run(ids[0]);
    } finally {
      other.close();
    }

    expect((await aborting).reason).toBe("lease-lost");
    expect((await done)[0]!.outcome).toBe("lease-lost");
    const task = await h.store.tasks.get({ taskId: ids[0]!, eventLimit: 1000 });
    // Nothing of ours was recorded (the new holder's lease, never renewed, may since have been reaped).
    expect(task.status).not.toBe("completed");
    expect(task.result).toBeNull();
    expect(eventTypes(task.events)).not.toContain("task:completed");
  });

  it("never has its live lease reaped by another process, whatever that process's clock says", async () => {
    h = await harness([{ id: "sleeper", adapter: { kind: "sleep" }, leaseMs: 300 }]);
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "sleeper", title: "long", payload: { ms: 1_500 } }], now: Date.now() });
    const started = next(h.supervisor.events, "task:run-started");
    const done = finished(h.supervisor.events, 1);
    await h.supervisor.start();
    await started;
    // Another process, its wall clock a minute ahead, reaps every 50 ms while the attempt runs.
    const other = await openStore({ path: h.dbPath });
    try {
      const reaps: number[] = [];
      while (!(await h.store.tasks.get({ taskId: ids[0]! })).finishedAt) {
        const reaped = await other.maintenance.reapExpired({ now: Date.now() + 60_000 });
        reaps.push(reaped.retried.length + reaped.failed.length);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(reaps.every((n) => n === 0)).toBe(true);
    } finally {
      await other.close();
    }
    expect((await done)[0]!.outcome).toBe("completed");
    expect((await h.store.tasks.get({ taskId: ids[0]! })).attempts).toBe(1);
  });

  it("keeps a long attempt's lease alive with heartbeats until it completes", async () => {
    h = await harness([{ id: "sleeper", adapter: { kind: "sleep" }, leaseMs: 150 }]);
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "sleeper", title: "longer than its lease", payload: { ms: 700 } }], now: Date.now() });
    let renewals = 0;
    h.supervisor.events.on("lease:renewed", (e) => (renewals += e.count));
    const done = finished(h.supervisor.events, 1);
    await h.supervisor.start();
    expect((await done)[0]!.outcome).toBe("completed");
    expect(renewals).toBeGreaterThan(0);
    const task = await h.store.tasks.get({ taskId: ids[0]!, eventLimit: 1000 });
    expect(task.attempts).toBe(1);
    expect(eventTypes(task.events)).not.toContain("lease:expired");
  });
});
