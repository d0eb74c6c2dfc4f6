import { afterEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { finished, harness, type Harness } from "./helpers.js";

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe("supervisor: wake-ups", () => {
  it("starts a task another process enqueued without waiting for the poll interval (the database folder is watched)", async () => {
    // A poll interval far longer than the test's timeout: only the file watch can wake it.
    h = await harness([{ id: "echoer", adapter: { kind: "echo" } }], { config: { pollIntervalMs: 600_000 } });
    await h.supervisor.start();
    const done = finished(h.supervisor.events, 1, () => true, 20_000);
    const other = await openStore({ path: h.dbPath });
    try {
      const { ids } = await other.tasks.enqueue({ tasks: [{ persona: "echoer", title: "from another process", payload: { hello: 1 } }], now: Date.now() });
      const [run] = await done;
      expect(run!.taskId).toBe(ids[0]);
      expect(run!.outcome).toBe("completed");
    } finally {
      await other.close();
    }
  });
});
