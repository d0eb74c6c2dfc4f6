import { afterEach, describe, expect, it } from "vitest";
import type { Json, TaskDetail } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { finished, harness, type Harness } from "../supervisor/helpers.js";

/**
 * A module or shell adapter reports a provider's rate or usage limit the documented way
 * (docs/economics.md, "Provider limits"; docs/shell-adapter.md): through the real supervisor,
 * worker threads (dist/) and store, the attempt is given back uncounted, the persona's
 * provider pauses for the retry-after given, and the task completes on attempt 1 after it.
 */
const retry = { maxAttempts: 3, backoff: "fixed", baseMs: 10, maxMs: 10, jitter: 0 };

let h: Harness | null = null;
let temp: TempDir | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
  temp?.cleanup();
  temp = null;
});

async function runTwice(persona: string, payload: { [key: string]: Json }): Promise<{ task: TaskDetail; pausedUntil: number | null }> {
  const first = finished(h!.supervisor.events, 1, (e) => e.persona === persona);
  const both = finished(h!.supervisor.events, 2, (e) => e.persona === persona);
  const { ids } = await h!.store.tasks.enqueue({ tasks: [{ persona, title: `a ${persona} task`, payload }], now: Date.now() });
  await first;
  const pause = (await h!.store.economics.pauses({ now: Date.now() })).find((p) => p.provider === "api-test");
  await both;
  return { task: await h!.store.tasks.get({ taskId: ids[0]!, eventLimit: 100 }), pausedUntil: pause?.until ?? null };
}

function expectUncountedPause(task: TaskDetail, pausedUntil: number | null, retryAfterMs: number): void {
  expect(task).toMatchObject({ status: "completed", attempts: 1 });
  expect(task.events.filter((e) => e.type === "task:retrying")).toEqual([]);
  const released = task.events.find((e) => e.type === "task:released")!;
  expect((released.data as { reason: string }).reason).toMatch(/^rate-limit: /);
  expect(pausedUntil).not.toBeNull();
  expect(pausedUntil! - released.at).toBeGreaterThanOrEqual(retryAfterMs - 50);
  expect(pausedUntil! - released.at).toBeLessThanOrEqual(retryAfterMs + 50);
  const claims = task.events.filter((e) => e.type === "task:claimed");
  expect(claims).toHaveLength(2);
  expect(claims[1]!.at - released.at).toBeGreaterThanOrEqual(retryAfterMs - 100);
}

describe.runIf(process.platform !== "win32")("provider limits reported by module and shell adapters", () => {
  it("a module adapter's plain Error with details { failure: 'rate-limit', retryAfterMs } pauses the provider and is not counted", async () => {
    h = await harness([{ id: "limited", adapter: { kind: "module", path: "./adapter-provider-limit.mjs" }, retry, provider: "api-test" }], { fixtures: ["adapter-provider-limit.mjs"] });
    await h.supervisor.start();
    const { task, pausedUntil } = await runTwice("limited", { marker: h.temp.path("module-ran"), retryAfterMs: 1_500 });
    expectUncountedPause(task, pausedUntil, 1_500);
    expect(task.result).toEqual({ done: true, attempt: 1 });
  });

  it("a shell script's `::roster:limit {json}` line before a non-zero exit pauses the provider and is not counted; a malformed one is an ordinary failure", async () => {
    const script = (marker: string, line: string) =>
      `cat >/dev/null; if [ ! -e ${marker} ]; then touch ${marker}; echo '${line}' >&2; echo 'HTTP 429' >&2; exit 1; fi; echo '{"ok":1}'`;
    temp = makeTempDir("roster-shell-limit-");
    const cwd = temp.dir;
    h = await harness([
      { id: "limited", adapter: { kind: "shell", command: "/bin/sh", args: ["-c", script("limited.ran", '::roster:limit {"failure":"rate-limit","retryAfterMs":1500}')], cwd }, retry, provider: "api-test" },
      { id: "garbled", adapter: { kind: "shell", command: "/bin/sh", args: ["-c", script("garbled.ran", '::roster:limit {"failure":"slow-down"}')], cwd }, retry },
    ]);
    await h.supervisor.start();
    const { task, pausedUntil } = await runTwice("limited", {});
    expectUncountedPause(task, pausedUntil, 1_500);
    expect(task.result).toEqual({ ok: 1 });

    const garbled = await runTwice("garbled", {});
    expect(garbled.task).toMatchObject({ status: "completed", attempts: 2 });
    const retried = garbled.task.events.find((e) => e.type === "task:retrying");
    expect((retried?.data as { error: { message: string } }).error.message).toContain('::roster:limit {"failure":"slow-down"}');
  });
});
