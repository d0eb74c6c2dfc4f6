import { existsSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from "vitest";
import { runAgent } from "../../src/adapters/agent/index.js";
import type { AdapterTask } from "../../src/adapters/types.js";
import { RosterError } from "../../src/errors.js";
import { agentConfig, git, makeContext, makeRepo, makeTask, tempDir } from "../agent/helpers.js";
import { closedPort, GEMINI_MODEL, offlineEnv, OPENAI_MODEL, startModelServer, startTrapProxy, USAGE, type ModelServer, type Scenario, type TrapProxy } from "./model-server.js";

/**
 * The real agent CLIs (pinned in ./package.json, installed with `npm ci --prefix
 * test/agent-cli`) run through roster's agent adapter against the scripted model
 * server on 127.0.0.1, in worktrees of a real git repository, each with a fresh
 * home. Nothing leaves 127.0.0.1. Without the install the tier is skipped, except
 * in CI (CI=true), where that is a failure.
 */
const HERE = dirname(fileURLToPath(import.meta.url));
const BIN = join(HERE, "node_modules", ".bin");
export const CLIS_INSTALLED = ["claude", "codex", "gemini"].every((name) => existsSync(join(BIN, name)));
const run = CLIS_INSTALLED || process.env.CI === "true" ? describe : describe.skip;

type Cli = "claude" | "codex" | "gemini";
const CLIS: Cli[] = ["claude", "codex", "gemini"];
const KEY_VAR = "ROSTER_TEST_MODEL_KEY";

let server: ModelServer;
let trap: TrapProxy;
let dir: { path: string; cleanup: () => void };
let repo: string;

beforeAll(async () => {
  server = await startModelServer({ kind: "text", text: "" });
  trap = await startTrapProxy();
});
afterAll(async () => {
  await server.close();
  await trap.close();
});
beforeEach(() => {
  dir = tempDir("agent-cli");
  repo = makeRepo(dir.path, "app");
  server.requests.length = 0;
});
afterEach(() => {
  dir.cleanup();
  for (const home of keptHomes.splice(0)) rmSync(home, { recursive: true, force: true });
  // Nothing went anywhere but the scripted server: every proxy variable points at the trap (./model-server.ts).
  expect(trap.seen).toEqual([]);
});

/** The persona settings a user gives each CLI to use a gateway: base URL, key variable, model, a fresh home. */
export function cliPersona(cli: Cli, baseUrl: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    profile: cli,
    command: join(BIN, cli),
    baseUrl: cli === "codex" ? `${baseUrl}/v1` : baseUrl,
    apiKeyEnv: KEY_VAR,
    home: "fresh",
    ...(cli === "codex" ? { model: OPENAI_MODEL } : cli === "gemini" ? { model: GEMINI_MODEL } : {}),
    ...extra,
  };
}

/** Only what the CLIs need from the environment (no keys of the machine), with every proxy variable on the trap. */
function baseEnv(): NodeJS.ProcessEnv {
  return offlineEnv(trap, { [KEY_VAR]: "sk-scripted-test-key" });
}

async function attempt(cli: Cli, scenario: Scenario, extra: Record<string, unknown> = {}, url = server.url, task: Partial<AdapterTask> = {}) {
  server.setScenario(scenario);
  const config = agentConfig({ ...cliPersona(cli, url, extra), workspace: { kind: "worktree", repo, base: "main", keep: "always", autoCommit: true } });
  const ctx = makeContext(config, { dir: dir.path });
  return { ctx, running: runAgent(makeTask({ title: "Write hello", description: "Write hello.txt.", ...task }), ctx, { baseEnv: baseEnv() }) };
}

/** Fresh homes failed attempts kept for a next attempt (details.home); removed after each test. */
const keptHomes: string[] = [];

async function failure(promise: Promise<unknown>): Promise<RosterError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RosterError && typeof error.details?.home === "string") keptHomes.push(error.details.home);
    if (error instanceof RosterError) return error;
    throw error;
  }
  throw new Error("expected the attempt to fail");
}

run.each(CLIS)("the real %s CLI against the scripted model server", (cli) => {
  it("returns the scripted text, writes a file through a scripted tool call in its worktree, and reports its session and usage", async () => {
    const { running } = await attempt(cli, { kind: "write", path: "hello.txt", content: `hello from ${cli}\n`, text: `WROTE hello.txt with ${cli}` });
    const output = await running;
    const result = output.result as Record<string, any>;
    expect(result.text).toBe(`WROTE hello.txt with ${cli}`);
    expect(typeof result.sessionId).toBe("string");
    expect(result.workspace.commits).toBeGreaterThanOrEqual(1);
    expect(git(repo, "show", `${result.workspace.branch}:hello.txt`)).toBe(`hello from ${cli}`);
    // Two model calls: the tool call, then the text after its result.
    const usage = result.usage;
    if (cli === "claude") {
      expect(usage).toMatchObject({ inputTokens: 2 * USAGE.anthropic.input_tokens, outputTokens: 2 * USAGE.anthropic.output_tokens, cacheReadTokens: 2 * USAGE.anthropic.cache_read_input_tokens, cacheWriteTokens: 2 * USAGE.anthropic.cache_creation_input_tokens, turns: 2 });
      expect(usage.costUsd).toBeGreaterThan(0);
    } else if (cli === "codex") {
      const u = USAGE.openai;
      expect(usage).toMatchObject({ model: OPENAI_MODEL, inputTokens: 2 * (u.input_tokens - u.cached_tokens), cacheReadTokens: 2 * u.cached_tokens, outputTokens: 2 * u.output_tokens, reasoningTokens: 2 * u.reasoning_tokens, costUsd: null });
    } else {
      const u = USAGE.gemini;
      expect(usage).toMatchObject({ model: GEMINI_MODEL, inputTokens: 2 * (u.promptTokenCount - u.cachedContentTokenCount), cacheReadTokens: 2 * u.cachedContentTokenCount, outputTokens: 2 * (u.candidatesTokenCount + u.thoughtsTokenCount), costUsd: null, turns: 2 });
    }
    // Every request came to the scripted server, with the key roster passed through.
    const calls = server.requests.filter((r) => r.provider !== "other");
    expect(calls.length).toBeGreaterThanOrEqual(2);
    const sent = JSON.stringify(calls[0]!.headers);
    expect(sent).toContain("sk-scripted-test-key");
  });

  it("continues a failed attempt: attempt 2 resumes attempt 1's session, with the file attempt 1 wrote (uncommitted) in its worktree", async () => {
    // Attempt 1 writes wip.txt through a tool call, then the model API fails (500) before the turn ends.
    const first = await failure((await attempt(cli, { kind: "write-then-fail", path: "wip.txt", content: "work in progress\n" }, { }, server.url, { attempt: 1, maxAttempts: 3 })).running);
    expect(first.retryable).toBe(true);
    const details = first.details as Record<string, any>;
    expect(details.failure).toBe("server");
    expect(typeof details.sessionId).toBe("string");
    expect(details.workspace.wip).toBe("refs/roster/wip/7/1");
    expect(git(repo, "show", "refs/roster/wip/7/1:wip.txt")).toBe("work in progress");
    // Its fresh home holds the session: kept for the next attempt.
    expect(existsSync(details.home)).toBe(true);
    const before = server.requests.length;

    // Attempt 2, as the next claim hands it over: the stored error is task.previous.
    const previous = { code: first.code, message: first.message, retryable: first.retryable, details: JSON.parse(JSON.stringify(details)) as Record<string, unknown> };
    const output = await (await attempt(cli, { kind: "text", text: "CONTINUED" }, {}, server.url, { attempt: 2, maxAttempts: 3, previous })).running;
    const result = output.result as Record<string, any>;
    expect(result.text).toBe("CONTINUED");
    expect(result.resumed).toEqual({ sessionId: details.sessionId, wip: "refs/roster/wip/7/1", files: ["wip.txt"] });
    // The model saw attempt 1's turns (its tool call's content), and roster's note that this continues it.
    const calls = server.requests.slice(before).filter((r) => r.provider !== "other");
    const sent = JSON.stringify(calls[0]!.body);
    expect(sent).toContain("work in progress");
    expect(sent).toContain("Continuing");
    if (cli === "codex") expect(result.sessionId).toBe(details.sessionId);
    // Attempt 2's branch holds attempt 1's file (committed by autoCommit on success); the saved work is dropped; the home is gone.
    expect(git(repo, "show", `${result.workspace.branch}:wip.txt`)).toBe("work in progress");
    expect(git(repo, "for-each-ref", "refs/roster/wip/")).toBe("");
    expect(existsSync(details.home)).toBe(false);
  });

  it("fails not retryable on a rejected key, naming the variable, with the CLI's own message", async () => {
    const error = await failure((await attempt(cli, { kind: "auth" })).running);
    expect(error.retryable).toBe(false);
    expect(error.details).toMatchObject({ failure: "auth" });
    expect(error.message).toContain(KEY_VAR);
    expect(error.message).toMatch(cli === "gemini" ? /API key not valid/ : cli === "codex" ? /Incorrect API key/ : /Invalid API key/);
  });

  it("fails retryable on a 429, with the delay where the CLI reports it", async () => {
    const error = await failure((await attempt(cli, { kind: "rate-limit", retryAfterS: 7 })).running);
    expect(error.retryable).toBe(true);
    expect(error.details).toMatchObject({ failure: "rate-limit", rateLimited: true });
    if (cli === "gemini") expect(error.details?.retryAfterMs).toBe(7_000);
  });

  it("reads a usage limit with its reset time where the CLI reports one", async () => {
    const resetAtMs = Date.now() + 5 * 3_600_000;
    const error = await failure((await attempt(cli, { kind: "usage-limit", resetAtMs })).running);
    expect(error.retryable).toBe(true);
    if (cli === "claude") {
      // Claude Code with an API key reports a plan's limit (anthropic-ratelimit-unified-*) as a plain 429.
      expect(error.details).toMatchObject({ failure: "rate-limit" });
    } else if (cli === "codex") {
      expect(error.details).toMatchObject({ failure: "usage-limit" });
      // "try again at <local time>", to the minute.
      expect(Math.abs((error.details!.resetAt as number) - resetAtMs)).toBeLessThan(60_000);
    } else {
      expect(error.details).toMatchObject({ failure: "usage-limit" });
      expect(error.details!.resetAt).toBeGreaterThan(Date.now());
    }
  });

  it("fails retryable on a server error", async () => {
    const error = await failure((await attempt(cli, { kind: "server-error" })).running);
    expect(error.retryable).toBe(true);
    expect(error.details).toMatchObject({ failure: "server" });
  });

  it("fails retryable, without starting the CLI, when the model API's port is closed", async () => {
    const port = await closedPort();
    const error = await failure((await attempt(cli, { kind: "text", text: "unused" }, {}, `http://127.0.0.1:${port}`)).running);
    expect(error.retryable).toBe(true);
    expect(error.details).toMatchObject({ failure: "unreachable" });
  });

  it("fails not retryable, naming the tool, when its permissions refuse the write", async () => {
    const args = cli === "claude" ? ["--permission-mode", "default"] : cli === "codex" ? ["--sandbox", "read-only"] : ["--approval-mode", "default"];
    const error = await failure((await attempt(cli, { kind: "write", path: "hello.txt", content: "x\n", text: "claimed to write" }, { args })).running);
    expect(error.message).not.toBe("");
    expect(error.code, error.message).toBe("ADAPTER_FAILED");
    expect(error.retryable).toBe(false);
    expect(error.details).toMatchObject({ failure: "permission-denied", tool: cli === "claude" ? "Write" : cli === "codex" ? "apply_patch" : "write_file" });
  });

  it("stops the CLI when the attempt times out on a hung request", async () => {
    const { ctx, running } = await attempt(cli, { kind: "hang" });
    const settled = failure(running);
    for (let i = 0; i < 600 && !server.requests.some((r) => r.provider !== "other"); i++) await new Promise((r) => setTimeout(r, 50));
    expect(server.requests.some((r) => r.provider !== "other")).toBe(true);
    ctx.controller.abort(new RosterError("TIMEOUT", "attempt timed out"));
    const error = await settled;
    expect(error.code).toBe("TIMEOUT");
  });
});

run("the trap for traffic that would leave 127.0.0.1", () => {
  it.each(["claude", "gemini"] as const)("catches the real %s CLI when it has no local baseUrl (so an empty record means none left)", async (cli) => {
    const { baseUrl: _local, ...settings } = cliPersona(cli, server.url);
    const config = agentConfig(settings);
    const ctx = makeContext(config, { dir: dir.path });
    const timer = setTimeout(() => ctx.controller.abort(new RosterError("TIMEOUT", "attempt timed out")), 45_000);
    try {
      await failure(runAgent(makeTask({ title: "Say hi", description: "Say hi." }), { ...ctx, persona: { ...ctx.persona, dir: repo } }, { baseEnv: baseEnv() }));
    } finally {
      clearTimeout(timer);
    }
    expect(trap.seen.some((r) => r.includes(cli === "claude" ? "api.anthropic.com" : "googleapis.com"))).toBe(true);
    trap.seen.length = 0;
  });
});

export const AGENT_CLI_BIN = resolve(BIN);
