import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import type { UsageRecord } from "../../src/store/economics.js";
import { makeRepo } from "../agent/helpers.js";
import { USAGE, type ModelServer, type TrapProxy } from "./model-server.js";
import { describeWithClis, openWorld, closeWorld, runRoster, agentAdapterLines, scriptedEnv, ROSTER_BIN, type World } from "./harness.js";

/**
 * Streaming usage from a real agent CLI through `roster start` (docs/economics.md,
 * "Streaming usage and the in-flight rule"): Claude Code, in stream-json, reports each
 * model reply's usage as it comes, and Codex's session file its running total (each
 * request's token_count); the reply that takes its task past its token budget
 * gets the attempt aborted (its process group killed) before the next reply, recorded
 * as budget_exhausted with the usage streamed so far, and given back uncounted; the
 * task waits, `roster why` names its budget, `roster budget raise` lifts it, and the
 * task runs again and completes.
 */
const run = describeWithClis(["claude", "codex"]);

let server: ModelServer;
let trap: TrapProxy;
let dir: World["dir"];
beforeAll(async () => {
  ({ server, trap, dir } = await openWorld({ kind: "text", text: "" }, "agent-cli-streaming"));
});
afterAll(() => closeWorld({ server, trap, dir }));

const roster = (args: string[]) => runRoster({ trap, dir }, args, 120_000);

/**
 * What each reply of the scripted server adds to the recorded usage, as streamed (Claude Code's stream
 * shows a reply's usage with the output count of its start, 1) and as the CLI's final figures.
 */
const A = USAGE.anthropic;
const O = USAGE.openai;
const PER_REPLY = {
  claude: {
    streamed: { inputTokens: A.input_tokens, cacheWriteTokens: A.cache_creation_input_tokens, cacheReadTokens: A.cache_read_input_tokens, outputTokens: 1 },
    final: { inputTokens: A.input_tokens, cacheWriteTokens: A.cache_creation_input_tokens, cacheReadTokens: A.cache_read_input_tokens, outputTokens: A.output_tokens },
  },
  codex: {
    streamed: { inputTokens: O.input_tokens - O.cached_tokens, cacheWriteTokens: 0, cacheReadTokens: O.cached_tokens, outputTokens: O.output_tokens },
    final: { inputTokens: O.input_tokens - O.cached_tokens, cacheWriteTokens: 0, cacheReadTokens: O.cached_tokens, outputTokens: O.output_tokens },
  },
} as const;
const times = (n: number, u: Record<string, number>) => Object.fromEntries(Object.entries(u).map(([k, v]) => [k, n * v]));
const tokensOf = (u: Record<string, number>) => Object.values(u).reduce((a, b) => a + b, 0);

run.each(["claude", "codex"] as const)("the real %s CLI crossing its task's budget mid-run", (cli) => {
  it("is aborted at the reply that reaches the budget, recorded as budget_exhausted, held uncounted (the supervisor ends, naming the raise), and completes after roster budget raise", async () => {
    const personas = join(dir.path, `personas-${cli}`);
    mkdirSync(personas);
    makeRepo(dir.path, `work-${cli}`);
    // Four tool calls, then the answer: five replies, each 1.5 s after its request, so an abort lands between two.
    server.setScenario({ kind: "route", routes: [{ when: "MARKER-STEPS", then: { kind: "steps", steps: 4, path: "step.txt", text: "ALL STEPS DONE", delayMs: 1_500 } }], otherwise: { kind: "text", text: "(unscripted)" } });
    writeFileSync(
      join(personas, "spender.md"),
      [
        "---",
        "id: spender",
        "name: spender",
        ...agentAdapterLines(cli, server.url),
        `  cwd: ../work-${cli}`,
        "timeoutMs: 120000",
        "---",
        "You are spender. MARKER-STEPS",
        "",
      ].join("\n"),
    );
    const db = join(dir.path, `${cli}.db`);
    expect((await roster(["init", "--db", db, "--personas", personas])).code).toBe(0);
    const added = await roster(["add", "--db", db, "--persona", "spender", "--title", "spend in steps"]);
    expect(added.code, added.stderr).toBe(0);
    // 2.5 replies' worth of streamed tokens: the third reply crosses it.
    const limit = Math.floor(2.5 * tokensOf(PER_REPLY[cli].streamed));
    const set = await roster(["budget", "set", "--db", db, "--task", "1", "--tokens", String(limit)]);
    expect(set.code, set.stderr).toBe(0);

    const supervisor = spawn(process.execPath, [ROSTER_BIN, "start", "--db", db, "--personas", personas, "--exit-when-idle", "--no-metrics", "--log-level", "info"], { cwd: dir.path, env: scriptedEnv(trap), stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    supervisor.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((done) => supervisor.on("exit", (code) => done(code)));
    const store = await openStore({ path: db });
    try {
      // Wait for the first attempt's settlement (another process writes it: the store is polled).
      let usage: UsageRecord[] = [];
      for (let waited = 0; usage.length === 0; waited += 100) {
        if (waited > 90_000) throw new Error(`no attempt settled within 90 s; supervisor stderr:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
        usage = await store.economics.usageOf({ taskId: 1 });
      }
      const provider = cli === "claude" ? "anthropic" : "openai";
      const requestsAtAbort = server.requests.filter((r) => r.provider === provider && JSON.stringify(r.body).includes("MARKER-STEPS")).length;
      // Aborted after the third reply: what it streamed is what is recorded (no final result was printed).
      expect(usage.map((u) => u.outcome)).toEqual(["budget_exhausted"]);
      expect(usage[0]).toMatchObject(times(3, PER_REPLY[cli].streamed));
      // The fourth request may have been sent; its reply (1.5 s later) never came to count.
      expect(requestsAtAbort).toBeGreaterThanOrEqual(3);
      expect(requestsAtAbort).toBeLessThanOrEqual(4);
      const held = await store.tasks.get({ taskId: 1 });
      expect(held).toMatchObject({ status: "pending", attempts: 0 });
      expect(held.events.filter((e) => e.type === "task:released").map((e) => (e.data as { reason: string }).reason)).toEqual([expect.stringMatching(/^BUDGET_EXHAUSTED: task 1 attempt 1 aborted/)]);

      const why = await roster(["why", "--db", db, "1"]);
      expect(why.stdout).toMatch(/budget/);
      expect(why.stdout).toMatch(/roster budget raise --task 1/);

      // Only a person lifts a spent task budget: --exit-when-idle ends, naming the command that does.
      expect(await exited, stderr).toBe(0);
      expect(stderr).toContain("roster budget raise --task 1 --tokens N");
      const raised = await roster(["budget", "raise", "--db", db, "--task", "1", "--tokens", "100000"]);
      expect(raised.code, raised.stderr).toBe(0);
      const again = await roster(["start", "--db", db, "--personas", personas, "--exit-when-idle", "--no-metrics", "--log-level", "warn"]);
      expect(again.code, again.stderr).toBe(0);

      const done = await store.tasks.get({ taskId: 1 });
      expect([done.status, done.attempts]).toEqual(["completed", 1]);
      expect((done.result as { text: string }).text).toBe("ALL STEPS DONE");
      const all = await store.economics.usageOf({ taskId: 1 });
      expect(all.map((u) => u.outcome)).toEqual(["budget_exhausted", "completed"]);
      // The second attempt resumed the first one's conversation (its error, kept at the release, carries the
      // session: docs/agent-clis.md) and recorded the CLI's final figures, cost included: whole replies, as many
      // as the resumed conversation took (the CLI may send again the one the abort cut off), at most five.
      expect((done.result as { resumed?: { sessionId?: string } }).resumed?.sessionId).toEqual(expect.any(String));
      const replies = all[1]!.inputTokens / PER_REPLY[cli].final.inputTokens!;
      expect(Number.isInteger(replies) && replies >= 1 && replies <= 5, `${replies} replies`).toBe(true);
      expect(all[1]).toMatchObject(times(replies, PER_REPLY[cli].final));
      if (cli === "claude") expect(all[1]!.costSource).toBe("reported");
    } finally {
      if (supervisor.exitCode === null) supervisor.kill("SIGKILL");
      await store.close();
    }
    expect(trap.seen).toEqual([]);
  }, 240_000);
});
