import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { finished, harness, type Harness } from "../supervisor/helpers.js";

/**
 * Streaming usage (docs/economics.md, "Streaming usage and the in-flight rule"):
 * an attempt's reports reach the supervisor while it runs; the one that reaches
 * its task's or goal's budget is aborted (its process group killed as on a
 * timeout), recorded as budget_exhausted with what it reported, and given back
 * uncounted; the budget holds the task (roster why says so) until raised, and the
 * work then resumes and completes. Real supervisor, worker threads (dist/), store
 * and processes.
 */

/** A module adapter in a folder of its own. */
function moduleFile(name: string, source: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "roster-stream-")), name);
  writeFileSync(path, source);
  return path;
}

/**
 * Reports 1000 input tokens per step, `steps` steps `stepMs` apart (the first after
 * `offsetMs`), and writes the step it reached to `<payload.log>`; stops reporting
 * once aborted.
 */
const STEPPER = `import { appendFileSync } from "node:fs";
export async function run(task, ctx) {
  const { steps, stepMs, log, offsetMs = 0 } = task.payload;
  if (offsetMs > 0) await new Promise((resolve) => setTimeout(resolve, offsetMs));
  for (let i = 1; i <= steps; i++) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    appendFileSync(log, task.id + ":" + i + "\\n");
    ctx.reportUsage({ model: "no-such-model", inputTokens: 1000 });
    await new Promise((resolve) => {
      const t = setTimeout(resolve, stepMs);
      ctx.signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
    });
  }
  if (ctx.signal.aborted) throw ctx.signal.reason;
  return { steps };
}
`;

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

function stepsOf(log: string, taskId: number): number[] {
  return readFileSync(log, "utf8")
    .split("\n")
    .filter((l) => l.startsWith(`${taskId}:`))
    .map((l) => Number(l.split(":")[1]));
}

function completion(taskId: number): Promise<void> {
  return new Promise((resolve) => {
    const off = h!.store.events.on("task:completed", (e) => {
      if (e.taskId === taskId) (off(), resolve());
    });
  });
}

describe("streaming usage against budgets", () => {
  it("aborts a module attempt at the report that reaches its task's maxTokens, records it as budget_exhausted, holds the task uncounted, and a raise lets it complete", async () => {
    const path = moduleFile("stepper.mjs", STEPPER);
    const log = join(mkdtempSync(join(tmpdir(), "roster-stream-log-")), "steps.log");
    writeFileSync(log, "");
    h = await harness([{ id: "mod", adapter: { kind: "module", path } }], { config: { allowAbsoluteModules: true } });
    await h.supervisor.start();
    const aborted = finished(h.supervisor.events, 1, (e) => e.persona === "mod");
    const { ids } = await h.store.tasks.enqueue({
      tasks: [{ persona: "mod", title: "spends in steps", payload: { steps: 5, stepMs: 400, log }, policy: { maxTokens: 2_500 } }],
      now: Date.now(),
    });
    const id = ids[0]!;
    const [run] = await aborted;
    expect(run).toMatchObject({ outcome: "released", errorCode: "BUDGET_EXHAUSTED" });
    // The third report (3000 tokens) reached 2500: the attempt stopped there.
    expect(stepsOf(log, id)).toEqual([1, 2, 3]);
    expect(await h.store.tasks.get({ taskId: id })).toMatchObject({ status: "pending", attempts: 0 });
    expect((await h.store.economics.usageOf({ taskId: id })).map((u) => [u.outcome, u.inputTokens])).toEqual([["budget_exhausted", 3_000]]);
    const why = await h.store.why.explain({ taskId: id, now: Date.now() });
    expect(why.reasons.map((r) => r.code)).toContain("budget_exhausted");
    const events = await h.store.tasks.events({ taskId: id });
    expect(events.find((e) => e.type === "task:released")?.data).toMatchObject({ reason: expect.stringMatching(/^BUDGET_EXHAUSTED: /) });

    const done = completion(id);
    await h.store.economics.raiseBudget({ scope: "task", key: String(id), addTokens: 10_000, now: Date.now(), by: "test" });
    await done;
    expect(await h.store.tasks.get({ taskId: id })).toMatchObject({ status: "completed", attempts: 1 });
    expect((await h.store.economics.usageOf({ taskId: id })).map((u) => [u.outcome, u.inputTokens])).toEqual([
      ["budget_exhausted", 3_000],
      ["completed", 5_000],
    ]);
  });

  it.runIf(process.platform !== "win32")("kills a shell script's process group at the ::roster:usage line that reaches its task's budget, and a raise lets it complete", async () => {
    h = await harness([{ id: "sh", adapter: { kind: "shell", command: "./spend.sh" } }]);
    const log = join(h.personasDir, "steps.log");
    writeFileSync(log, "");
    const script = join(h.personasDir, "spend.sh");
    // Five steps a second apart; a child `sleep` is part of the group that must die with it.
    writeFileSync(
      script,
      `#!/bin/sh
for i in 1 2 3 4 5; do
  echo "$ROSTER_TASK_ID:$i" >> ${JSON.stringify(log)}
  echo '::roster:usage {"model":"no-such-model","outputTokens":1000}' >&2
  sleep 1
done
echo '{"ok":true}'
`,
    );
    chmodSync(script, 0o755);
    await h.supervisor.start();
    const aborted = finished(h.supervisor.events, 1, (e) => e.persona === "sh");
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "sh", title: "spends in steps", policy: { maxTokens: 2_000 } }], now: Date.now() });
    const id = ids[0]!;
    expect((await aborted)[0]).toMatchObject({ outcome: "released", errorCode: "BUDGET_EXHAUSTED" });
    expect(stepsOf(log, id)).toEqual([1, 2]);
    expect(await h.store.tasks.get({ taskId: id })).toMatchObject({ status: "pending", attempts: 0 });
    expect((await h.store.economics.usageOf({ taskId: id })).map((u) => [u.outcome, u.outputTokens])).toEqual([["budget_exhausted", 2_000]]);
    expect((await h.store.why.explain({ taskId: id, now: Date.now() })).reasons.map((r) => r.code)).toContain("budget_exhausted");
    // Nothing of the killed attempt runs on: no step 3 of it appears while the task is held.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(stepsOf(log, id)).toEqual([1, 2]);

    const done = completion(id);
    await h.store.economics.raiseBudget({ scope: "task", key: String(id), addTokens: 10_000, now: Date.now(), by: "test" });
    await done;
    expect(await h.store.tasks.get({ taskId: id })).toMatchObject({ status: "completed", attempts: 1 });
    expect(stepsOf(log, id)).toEqual([1, 2, 1, 2, 3, 4, 5]);
    expect((await h.store.economics.usageOf({ taskId: id })).map((u) => [u.outcome, u.outputTokens])).toEqual([
      ["budget_exhausted", 2_000],
      ["completed", 5_000],
    ]);
  }, 30_000);

  it("a goal's budget counts every running attempt of the goal and the spend of those that settled meanwhile: the report that reaches it aborts all of them, and the goal overshoots by that report's excess only", async () => {
    const path = moduleFile("stepper.mjs", STEPPER);
    const log = join(mkdtempSync(join(tmpdir(), "roster-stream-log-")), "steps.log");
    writeFileSync(log, "");
    h = await harness([{ id: "mod", adapter: { kind: "module", path } }], { config: { allowAbsoluteModules: true } });
    const now = Date.now();
    const { ids: [root] } = await h.store.tasks.enqueue({ tasks: [{ persona: "mod", title: "the goal", payload: { steps: 0, stepMs: 0, log } }], now });
    // Reports (1000 tokens each), from dispatch: A at 0 and 200 ms, then A completes (400 ms, 2000 settled);
    // B at 100 and 900 ms (its reading predates A's settlement); C at 500 and 1300 ms.
    const { ids } = await h.store.tasks.enqueue({
      tasks: [
        { persona: "mod", title: "A", payload: { steps: 2, stepMs: 200, log } },
        { persona: "mod", title: "B", payload: { steps: 10, stepMs: 800, offsetMs: 100, log } },
        { persona: "mod", title: "C", payload: { steps: 10, stepMs: 800, offsetMs: 500, log } },
      ],
      parentId: root!,
      now,
    });
    const [a, b, c] = ids as [number, number, number];
    const LIMIT = 4_500;
    await h.store.economics.setBudget({ scope: "goal", key: String(root), maxTokens: LIMIT, now, by: "test" });
    const settled = finished(h.supervisor.events, 4, (e) => e.persona === "mod");
    await h.supervisor.start();
    const runs = await settled;
    // B's second report (900 ms) made 2000 settled (A) + 2000 (B) + 1000 (C) = 5000: B and C stopped there.
    // No attempt alone came near the limit: the in-flight sum and A's settled spend did it.
    expect(runs.filter((r) => r.errorCode === "BUDGET_EXHAUSTED").map((r) => r.taskId).sort()).toEqual([b, c]);
    expect(stepsOf(log, a)).toEqual([1, 2]);
    expect(stepsOf(log, b)).toEqual([1, 2]);
    expect(stepsOf(log, c)).toEqual([1]);
    const usage = async (id: number) => (await h!.store.economics.usageOf({ taskId: id })).map((u) => [u.outcome, u.inputTokens]);
    expect(await usage(a)).toEqual([["completed", 2_000]]);
    expect(await usage(b)).toEqual([["budget_exhausted", 2_000]]);
    expect(await usage(c)).toEqual([["budget_exhausted", 1_000]]);
    const goal = await h.store.economics.total({ rootId: root! });
    expect(goal.inputTokens - LIMIT).toBe(500);
    expect(await h.store.tasks.get({ taskId: root! })).toMatchObject({ status: "completed" });
    expect(await h.store.tasks.get({ taskId: a })).toMatchObject({ status: "completed", attempts: 1 });
    for (const id of [b, c]) {
      expect(await h.store.tasks.get({ taskId: id })).toMatchObject({ status: "pending", attempts: 0 });
      const why = await h.store.why.explain({ taskId: id, now: Date.now() });
      expect(why.reasons.find((r) => r.code === "budget_exhausted")?.data).toMatchObject({ scope: "goal", key: String(root) });
    }

    const resumed = Promise.all([completion(b), completion(c)]);
    await h.store.economics.raiseBudget({ scope: "goal", key: String(root), addTokens: 100_000, now: Date.now(), by: "test" });
    await resumed;
    for (const id of [b, c]) expect(await h.store.tasks.get({ taskId: id })).toMatchObject({ status: "completed", attempts: 1 });
    expect((await h.store.economics.total({ rootId: root! })).inputTokens).toBe(5_000 + 2 * 10_000);
  }, 40_000);
});
