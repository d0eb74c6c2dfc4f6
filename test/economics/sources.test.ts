import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { finished, harness, type Harness } from "../supervisor/helpers.js";

/**
 * Usage from each kind of source reaches its attempt through the real supervisor,
 * worker threads (dist/) and store; a provider's usage limit pauses its personas
 * and they resume by themselves at the reset (docs/economics.md).
 */
const ERRORS = pathToFileURL(join(process.cwd(), "dist", "src", "errors.js")).href;

/** A module adapter written to a folder of its own (persona files must find it when they are synced). */
function moduleFile(name: string, source: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "roster-econ-")), name);
  writeFileSync(path, source);
  return path;
}

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

async function runOne(persona: string, runs = 1): Promise<number> {
  const done = finished(h!.supervisor.events, runs, (e) => e.persona === persona);
  const { ids } = await h!.store.tasks.enqueue({ tasks: [{ persona, title: `a ${persona} task` }], now: Date.now() });
  await done;
  return ids[0]!;
}

describe("usage sources", () => {
  it("records what a module adapter reported with ctx.reportUsage, summed over its calls", async () => {
    const spender = moduleFile(
      "spender.mjs",
      `export async function run(task, ctx) {
        ctx.reportUsage({ model: "gpt-5", inputTokens: 1000, outputTokens: 100 });
        ctx.reportUsage({ model: "gpt-5", inputTokens: 500, outputTokens: 50, turns: 1 });
        return { answer: 42 };
      }\n`,
    );
    h = await harness([{ id: "mod", adapter: { kind: "module", path: spender } }], { config: { allowAbsoluteModules: true } });
    await h.supervisor.start();
    const id = await runOne("mod");
    const [usage] = await h.store.economics.usageOf({ taskId: id });
    expect(usage).toMatchObject({ persona: "mod", model: "gpt-5", inputTokens: 1_500, outputTokens: 150, turns: 1, outcome: "completed", costSource: "priced" });
    expect(usage!.costUsd).toBeCloseTo((1_500 * 1.25 + 150 * 10) / 1e6, 9);
  });

  it.runIf(process.platform !== "win32")("records a shell script's ::roster:usage line", async () => {
    h = await harness([{ id: "sh", adapter: { kind: "shell", command: "./spend.sh" } }]);
    const script = join(h.personasDir, "spend.sh");
    writeFileSync(script, `#!/bin/sh\necho '::roster:usage {"model":"claude-sonnet-4-5","inputTokens":10,"outputTokens":20,"costUsd":0.25}' >&2\necho '{"ok":true}'\n`);
    chmodSync(script, 0o755);
    await h.supervisor.start();
    const id = await runOne("sh");
    expect((await h.store.economics.usageOf({ taskId: id }))[0]).toMatchObject({ inputTokens: 10, outputTokens: 20, costUsd: 0.25, costSource: "reported" });
  });

  it("a usage limit with a reset pauses every persona on the provider, uncounted, and they resume by themselves at the reset", async () => {
    const limited = moduleFile(
      "limited.mjs",
      `import { RosterError } from ${JSON.stringify(ERRORS)};
      import { existsSync, writeFileSync } from "node:fs";
      // Once across threads: the attempt is given back uncounted, so task.attempt stays 1.
      const marker = new URL("./limited.once", import.meta.url);
      export async function run(task) {
        if (!existsSync(marker)) {
          writeFileSync(marker, "");
          throw new RosterError("ADAPTER_FAILED", "usage limit reached", { details: { failure: "usage-limit", resetAt: Date.now() + 1500, usage: { inputTokens: 7 } } });
        }
        return { ok: true };
      }\n`,
    );
    h = await harness(
      [
        { id: "limited", provider: "acct", adapter: { kind: "module", path: limited } },
        { id: "sibling", provider: "acct", adapter: { kind: "echo" } },
      ] as never,
      { config: { allowAbsoluteModules: true } },
    );
    await h.supervisor.start();
    const paused = new Promise<number | null>((resolve) => h!.store.events.once("provider:paused", (e) => resolve(e.until)));
    const { ids } = await h.store.tasks.enqueue({ tasks: [{ persona: "limited", title: "hits the limit" }], now: Date.now() });
    const done = new Promise<void>((resolve) => {
      const off = h!.store.events.on("task:completed", (e) => {
        if (e.taskId === ids[0]) (off(), resolve());
      });
    });
    const until = (await paused)!;
    const sibling = finished(h.supervisor.events, 1, (e) => e.persona === "sibling");
    await h.store.tasks.enqueue({ tasks: [{ persona: "sibling", title: "waits for the reset" }], now: Date.now() });
    await done;
    const [siblingRun] = await sibling;
    const task = await h.store.tasks.get({ taskId: ids[0]! });
    expect(task).toMatchObject({ status: "completed", attempts: 1 });
    expect((await h.store.economics.usageOf({ taskId: ids[0]! })).map((u) => u.outcome)).toEqual(["released"]);
    const siblingTask = (await h.store.tasks.list({ persona: "sibling" }))[0]!;
    expect(siblingTask.claimedAt!).toBeGreaterThanOrEqual(until);
    expect(siblingRun).toBeDefined();
  });
});
