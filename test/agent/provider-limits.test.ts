import { execFile, spawn } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import type { TaskDetail } from "../../src/store/types.js";
import { tempDir } from "./helpers.js";

/**
 * A provider's rate or usage limit reported by any agent CLI, through a real supervisor
 * (`roster start`, real worker threads and child processes): the attempt is given back
 * uncounted, the persona's provider account pauses (docs/economics.md, "Provider limits"),
 * and the task runs again after the pause. The CLIs are scripts that fail the first time
 * (a marker file says a run happened) and answer after.
 */
const BIN = resolve(dirname(fileURLToPath(import.meta.url)), "../../dist/src/cli/bin.js");

let dir: { path: string; cleanup: () => void };
let personas: string;
let db: string;
beforeEach(() => {
  dir = tempDir("provider-limits");
  personas = join(dir.path, "personas");
  mkdirSync(personas);
  db = join(dir.path, "roster.db");
});
afterEach(() => dir.cleanup());

function roster(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args, "--db", db], { cwd: dir.path, encoding: "utf8", timeout: 120_000 }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

/** A CLI that prints `fail` (a shell fragment) and exits 1 on its first run, and `ok` on later ones. */
function onceFailingCli(name: string, fail: string, ok: string): string {
  const path = join(personas, name);
  const marker = join(dir.path, `${name}.ran`);
  writeFileSync(path, `#!/bin/sh\ncat >/dev/null\nif [ ! -e ${JSON.stringify(marker)} ]; then\n  touch ${JSON.stringify(marker)}\n${fail}\n  exit 1\nfi\n${ok}\n`);
  chmodSync(path, 0o755);
  return `./${name}`;
}

function persona(id: string, adapter: string, provider: string): void {
  writeFileSync(
    join(personas, `${id}.md`),
    `---\nid: ${id}\nname: ${id}\nadapter: ${adapter}\nprovider: ${provider}\nretry: { maxAttempts: 3, backoff: fixed, baseMs: 300, maxMs: 300, jitter: 0 }\n---\nYou are ${id}.\n`,
  );
}

async function task(id: number): Promise<TaskDetail> {
  const store = await openStore({ path: db });
  try {
    return await store.tasks.get({ taskId: id });
  } finally {
    await store.close();
  }
}

const eventsOf = (t: TaskDetail, type: string) => t.events.filter((e) => e.type === type);

describe("a provider limit reported by an agent CLI", () => {
  it("a custom CLI's 429 with 'retry after 2s' is given back uncounted, pauses its provider for 2 s, and the task completes on attempt 1", async () => {
    const cli = onceFailingCli("limited.sh", `  echo "HTTP 429 Too Many Requests, retry after 2s" >&2`, `echo "done after the pause"`);
    persona("rl", `{ kind: agent, profile: custom, command: ${cli}, output: text }`, "custom-test");
    expect((await roster(["init", "--personas", personas])).code).toBe(0);
    expect((await roster(["add", "--persona", "rl", "--title", "t"])).code).toBe(0);
    const started = await roster(["start", "--personas", personas, "--exit-when-idle", "--no-metrics", "--log-level", "warn"]);
    expect(started.code, started.stderr).toBe(0);

    const t = await task(1);
    expect(t).toMatchObject({ status: "completed", attempts: 1 });
    expect(t.result).toMatchObject({ text: "done after the pause" });
    expect(eventsOf(t, "task:retrying")).toEqual([]);
    const [released] = eventsOf(t, "task:released");
    const reason = (released!.data as { reason: string }).reason;
    expect(reason).toMatch(/^rate-limit: /);
    // The message says what happens, not a counted retry.
    expect(reason).toMatch(/rate limited; retry after 2 s: provider paused, attempt not counted/);
    // Claimed again only once the CLI's 2 s are over, not after the persona's 300 ms backoff.
    const claims = eventsOf(t, "task:claimed");
    expect(claims).toHaveLength(2);
    expect(claims[1]!.at - released!.at).toBeGreaterThanOrEqual(1_900);
  }, 120_000);

  it("Codex's usage limit with no reset time says it pauses the provider (30 min), not 'not retryable', and the task waits uncounted", async () => {
    const limited = JSON.stringify({ type: "error", message: "You’ve hit your usage limit. Upgrade to Pro or try again later." });
    const cli = onceFailingCli("codex.sh", `  printf '%s\\n' '${limited}'`, `echo "not reached"`);
    persona("usage", `{ kind: agent, profile: codex, command: ${cli} }`, "openai-test");
    expect((await roster(["init", "--personas", personas])).code).toBe(0);
    expect((await roster(["add", "--persona", "usage", "--title", "t"])).code).toBe(0);
    const supervisor = spawn(process.execPath, [BIN, "start", "--db", db, "--personas", personas, "--exit-when-idle", "--no-metrics", "--log-level", "warn"], {
      cwd: dir.path,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    supervisor.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const exited = new Promise<void>((done) => supervisor.once("exit", () => done()));
    try {
      const deadline = Date.now() + 60_000;
      while ((await task(1)).events.every((e) => e.type !== "task:released")) {
        if (Date.now() > deadline) throw new Error(`not released within 60 s: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const held = await task(1);
      expect(held).toMatchObject({ status: "pending", attempts: 0 });
      const reason = (eventsOf(held, "task:released")[0]!.data as { reason: string }).reason;
      expect(reason).toMatch(/^usage-limit: /);
      expect(reason).not.toMatch(/not retryable/);
      expect(reason).toMatch(/usage limit reached; no reset time given: provider paused, attempt not counted/);
      const pauses = JSON.parse((await roster(["provider", "ls", "--json"])).stdout) as Array<{ provider: string; until: number; reason: string }>;
      expect(pauses).toHaveLength(1);
      expect(pauses[0]).toMatchObject({ provider: "openai-test", reason: "usage-limit" });
      const released = eventsOf(held, "task:released")[0]!.at;
      expect(pauses[0]!.until - released).toBeGreaterThanOrEqual(30 * 60_000 - 1_000);
      const why = await roster(["why", "1"]);
      expect(why.stdout).toMatch(/provider "openai-test" is paused \(usage-limit\)/);
      expect(why.stdout).not.toMatch(/not retryable/);

      expect(stderr).not.toMatch(/not retryable/);
    } finally {
      supervisor.kill("SIGINT");
      await exited;
    }
    expect(await task(1)).toMatchObject({ status: "pending", attempts: 0 });
  }, 120_000);
});
