import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { TaskRecord } from "../../src/store/index.js";
import { finished, harness, type Harness } from "../supervisor/helpers.js";

/**
 * The shell contract (docs/shell-adapter.md) through the real supervisor, worker
 * threads (dist/) and store: what a script's exit code and progress lines do to
 * its task.
 */
const CONTRACT = fileURLToPath(new URL("../fixtures/shell-contract.sh", import.meta.url));
const threeTimes = { maxAttempts: 3, backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 };

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

async function runTask(persona: string, attempts: number): Promise<TaskRecord> {
  const done = finished(h!.supervisor.events, attempts, (e) => e.persona === persona);
  const { ids } = await h!.store.tasks.enqueue({ tasks: [{ persona, title: `a ${persona} task` }], now: Date.now() });
  await done;
  return h!.store.tasks.get({ taskId: ids[0]! });
}

describe.runIf(process.platform !== "win32")("shell contract through the supervisor", () => {
  it("fails the task after one attempt of three when its script exits with ROSTER_EXIT_NO_RETRY, and retries any other failure", async () => {
    h = await harness([
      { id: "refuses", adapter: { kind: "shell", command: CONTRACT, args: ["no-retry"] }, retry: threeTimes },
      { id: "fails", adapter: { kind: "shell", command: CONTRACT, args: ["fail"] }, retry: threeTimes },
    ]);
    await h.supervisor.start();

    const refused = await runTask("refuses", 1);
    expect(refused.status).toBe("failed");
    expect(refused.attempts).toBe(1);
    expect(refused.error).toMatchObject({ code: "ADAPTER_FAILED", retryable: false });
    expect(refused.error!.message).toContain("the input cannot be used");

    const failed = await runTask("fails", 3);
    expect(failed.status).toBe("failed");
    expect(failed.attempts).toBe(3);
    expect(failed.error).toMatchObject({ code: "ADAPTER_FAILED", retryable: true });
  });

  it("reports a script's progress lines as the task's progress", async () => {
    // The script stays a moment after its first progress line: a report posted just before the
    // script exits can arrive after the attempt's outcome (another port), and is then dropped.
    h = await harness([{ id: "reports", adapter: { kind: "shell", command: CONTRACT, args: ["ok", "0.5"] }, retry: threeTimes }]);
    const progress: Array<{ fraction: number; message: string | null }> = [];
    h.supervisor.events.on("progress:reported", (e) => void progress.push({ fraction: e.fraction, message: e.message }));
    await h.supervisor.start();
    const task = await runTask("reports", 1);
    expect(task.status).toBe("completed");
    // Workers space their reports (and the store gets the latest only, every so often): the first one is reported, later ones may be folded.
    expect(progress[0]).toEqual({ fraction: 0.25, message: "reading the task" });
    for (const p of progress) expect([0.25, 0.5, 0.75]).toContain(p.fraction);
  });
});
