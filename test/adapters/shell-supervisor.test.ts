import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { TaskRecord } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { finished, harness, type Harness } from "../supervisor/helpers.js";

/**
 * The shell contract (docs/shell-adapter.md) through the real supervisor, worker
 * threads (dist/) and store: what a script's exit code and progress lines do to
 * its task.
 */
const CONTRACT = fileURLToPath(new URL("../fixtures/shell-contract.sh", import.meta.url));
const threeTimes = { maxAttempts: 3, backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 };

let h: Harness | null = null;
let temp: TempDir | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
  temp?.cleanup();
  temp = null;
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

  it("retries a task whose working folder is missing, saying so, and completes it once the folder is back; a missing program is not retried", async () => {
    // Node reports a missing cwd as ENOENT on the command: it was taken for a program not
    // found and failed for good (ADAPTER_NOT_FOUND), though another task deleting the shared
    // folder, or a mount not up yet, is nothing the task did and passes.
    temp = makeTempDir("roster-shell-cwd-");
    const folder = temp.path("work");
    h = await harness([
      { id: "elsewhere", adapter: { kind: "shell", command: "/bin/sh", args: ["-c", "cat >/dev/null; echo '{\"ok\":1}'"], cwd: folder }, retry: threeTimes },
      { id: "missing", adapter: { kind: "shell", command: "roster-no-such-program", cwd: temp.dir }, retry: threeTimes },
    ]);
    await h.supervisor.start();
    const firstTry = finished(h.supervisor.events, 1, (e) => e.persona === "elsewhere");
    const done = finished(h.supervisor.events, 2, (e) => e.persona === "elsewhere");
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "elsewhere", title: "runs in a folder not there yet" }], now: Date.now() });
    await firstTry;
    mkdirSync(folder);
    await done;
    const task = await h.store.tasks.get({ taskId: ids[0]!, eventLimit: 100 });
    expect(task.status).toBe("completed");
    expect(task.attempts).toBe(2);
    const retried = task.events.find((e) => e.type === "task:retrying");
    expect(retried?.data).toMatchObject({ error: { code: "ADAPTER_FAILED", message: `/bin/sh: cannot start: its working folder ${folder} does not exist` } });

    const missing = await runTask("missing", 1);
    expect(missing.status).toBe("failed");
    expect(missing.attempts).toBe(1);
    expect(missing.error).toMatchObject({ code: "ADAPTER_NOT_FOUND", retryable: false });
    expect(missing.error!.message).toMatch(/^roster-no-such-program: cannot start: not found or not executable/);
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
