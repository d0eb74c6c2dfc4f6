import { rmSync, writeFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { eventTypes, finished, harness, type Harness } from "./helpers.js";

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const fast = { backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 };

describe("supervisor: retries", () => {
  it("completes a flaky task with failTimes 2 on attempt 3", async () => {
    h = await harness([{ id: "flaky", adapter: { kind: "flaky", failTimes: 2 }, retry: { ...fast, maxAttempts: 4 } }]);
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "flaky", title: "flaky" }], now: Date.now() });
    const done = finished(h.supervisor.events, 1, (e) => e.outcome === "completed");
    await h.supervisor.start();
    await done;
    const task = await h.store.tasks.get({ taskId: ids[0]!, eventLimit: 1000 });
    expect(task.status).toBe("completed");
    expect(task.attempts).toBe(3);
    expect(eventTypes(task.events).filter((t) => t === "task:retrying")).toHaveLength(2);
    expect(task.events.find((e) => e.type === "task:completed")!.attempt).toBe(3);
  });

  it("ends a failing task failed after maxAttempts and blocks its dependents", async () => {
    h = await harness([
      { id: "failer", adapter: { kind: "fail" }, retry: { ...fast, maxAttempts: 2 } },
      { id: "after", adapter: { kind: "echo" } },
    ]);
    const { refs } = await h.store.tasks.enqueue({
      tasks: [
        { ref: "f", persona: "failer", title: "fails" },
        { ref: "d", persona: "after", title: "depends", dependsOn: ["f"] },
        { ref: "dd", persona: "after", title: "depends on the dependent", dependsOn: ["d"] },
      ],
      now: Date.now(),
    });
    const done = finished(h.supervisor.events, 1, (e) => e.outcome === "failed");
    await h.supervisor.start();
    const [last] = await done;
    expect(last!.attempt).toBe(2);
    const failed = await h.store.tasks.get({ taskId: refs.f!, eventLimit: 1000 });
    expect(failed.status).toBe("failed");
    expect(failed.attempts).toBe(2);
    expect(failed.error?.code).toBe("ADAPTER_FAILED");
    expect((await h.store.tasks.get({ taskId: refs.d! })).status).toBe("blocked");
    expect((await h.store.tasks.get({ taskId: refs.dd! })).status).toBe("blocked");
  });

  it("does not retry a non-retryable failure", async () => {
    h = await harness([{ id: "failer", adapter: { kind: "fail" }, retry: { ...fast, maxAttempts: 5 } }]);
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "failer", title: "fails", payload: { retryable: false } }], now: Date.now() });
    const done = finished(h.supervisor.events, 1);
    await h.supervisor.start();
    const [run] = await done;
    expect(run!.outcome).toBe("failed");
    const task = await h.store.tasks.get({ taskId: ids[0]! });
    expect(task.attempts).toBe(1);
    expect(task.error?.retryable).toBe(false);
  });

  it("brings a failed task and its blocked dependents back on retry, and they complete", async () => {
    h = await harness(
      [
        { id: "toggle", adapter: { kind: "module", path: "./adapter-toggle.mjs" }, retry: { ...fast, maxAttempts: 2 } },
        { id: "after", adapter: { kind: "echo" } },
      ],
      { fixtures: ["adapter-toggle.mjs"] },
    );
    const flag = h.temp.path("flag");
    writeFileSync(flag, "set");
    const { refs } = await h.store.tasks.enqueue({
      tasks: [
        { ref: "t", persona: "toggle", title: "fails while the flag is set", payload: { flag } },
        { ref: "d", persona: "after", title: "depends", dependsOn: ["t"] },
      ],
      now: Date.now(),
    });
    const failed = finished(h.supervisor.events, 1, (e) => e.outcome === "failed");
    await h.supervisor.start();
    await failed;
    expect((await h.store.tasks.get({ taskId: refs.d! })).status).toBe("blocked");

    rmSync(flag);
    const completed = finished(h.supervisor.events, 2, (e) => e.outcome === "completed");
    const retried = await h.store.tasks.retry({ taskId: refs.t!, now: Date.now() });
    expect(retried.status).toBe("pending");
    expect(retried.unblocked).toContain(refs.d!);
    await completed;
    expect((await h.store.tasks.get({ taskId: refs.t! })).status).toBe("completed");
    expect((await h.store.tasks.get({ taskId: refs.d! })).status).toBe("completed");
  });
});
