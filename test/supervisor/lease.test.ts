import { afterEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { eventTypes, finished, harness, next, type Harness } from "./helpers.js";

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe("supervisor: leases", () => {
  it("aborts an attempt whose lease another process expired, and discards its result", async () => {
    h = await harness([
      { id: "sleeper", adapter: { kind: "sleep" }, leaseMs: 300, retry: { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 } },
    ]);
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "sleeper", title: "long", payload: { ms: 60_000 } }], now: Date.now() });
    const started = next(h.supervisor.events, "task:run-started");
    const aborting = next(h.supervisor.events, "task:aborting");
    const done = finished(h.supervisor.events, 1);
    await h.supervisor.start();
    await started;

    // Another connection (as another process would) expires the lease.
    const other = await openStore({ path: h.dbPath });
    try {
      const reaped = await other.maintenance.reapExpired({ now: Date.now() + 60_000 });
      expect(reaped.failed.map((r) => r.taskId)).toEqual([ids[0]]);
    } finally {
      await other.close();
    }

    expect((await aborting).reason).toBe("lease-lost");
    expect((await done)[0]!.outcome).toBe("lease-lost");
    const task = await h.store.tasks.get({ taskId: ids[0]!, eventLimit: 1000 });
    expect(task.status).toBe("failed");
    expect(task.result).toBeNull();
    expect(eventTypes(task.events)).toContain("lease:expired");
    expect(eventTypes(task.events)).not.toContain("task:completed");
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
