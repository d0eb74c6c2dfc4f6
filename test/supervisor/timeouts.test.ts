import { afterEach, describe, expect, it } from "vitest";
import { finished, harness, next, type Harness } from "./helpers.js";

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const once = { maxAttempts: 1, backoff: "fixed", baseMs: 0, maxMs: 0, jitter: 0 };

describe("supervisor: timeouts", () => {
  it("aborts a sleep that outlives its timeout through its signal, failing the attempt with TIMEOUT", async () => {
    h = await harness([{ id: "sleeper", adapter: { kind: "sleep" }, timeoutMs: 150, retry: once }], { supervisor: { abortGraceMs: 10_000 } });
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "sleeper", title: "too long", payload: { ms: 60_000 } }], now: Date.now() });
    const aborting = next(h.supervisor.events, "task:aborting");
    const done = finished(h.supervisor.events, 1);
    await h.supervisor.start();
    expect((await aborting).reason).toBe("timeout");
    expect((await done)[0]!.outcome).toBe("failed");
    const task = await h.store.tasks.get({ taskId: ids[0]! });
    expect(task.status).toBe("failed");
    expect(task.error?.code).toBe("TIMEOUT");
    // The adapter stopped on its signal: its thread was not terminated (the grace is 10 s).
    expect(task.error?.message).not.toMatch(/terminated/);
  });

  it("terminates the thread of a module spinning in while(true) and keeps serving the tasks after it", async () => {
    h = await harness(
      [
        { id: "spinner", adapter: { kind: "module", path: "./adapter-spin.mjs" }, timeoutMs: 150, retry: once },
        { id: "echo", adapter: { kind: "echo" } },
      ],
      { fixtures: ["adapter-spin.mjs"], supervisor: { abortGraceMs: 100 } },
    );
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "spinner", title: "spins" }], now: Date.now() });
    const spun = finished(h.supervisor.events, 1);
    await h.supervisor.start();
    expect((await spun)[0]!.outcome).toBe("failed");
    const spinner = await h.store.tasks.get({ taskId: ids[0]! });
    expect(spinner.error?.code).toBe("TIMEOUT");
    expect(spinner.error?.message).toMatch(/thread was terminated/);

    // Enough tasks after it to reach every thread, the replacement included.
    const after = await h.store.tasks.enqueue({
      tasks: Array.from({ length: 20 }, (_, i) => ({ persona: "echo", title: `after ${i}`, payload: { ms: 20 + i } })),
      now: Date.now(),
    });
    const runs = await finished(h.supervisor.events, 20);
    expect(runs.every((r) => r.outcome === "completed")).toBe(true);
    for (const id of after.ids) expect((await h.store.tasks.get({ taskId: id })).status).toBe("completed");
  });
});
