import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import type { TaskDetail } from "../../src/store/types.js";
import { git, makeRepo } from "../agent/helpers.js";
import { closedPort, type ModelServer, type TrapProxy } from "./model-server.js";
import { describeWithClis, openWorld, closeWorld, runRoster, agentAdapterLines, KEY_VAR, type World } from "./harness.js";

/**
 * Each failure class of a real CLI, served by the scripted model server, ends in the
 * right roster outcome through a real supervisor (`roster start`), not only in the
 * adapter's error (./real-clis.test.ts has every class for every CLI there):
 *
 * - auth (claude): failed at once, attempt 1 of 3, the error names the key's variable;
 * - rate limit with retry-after (gemini): released uncounted, its provider paused for the
 *   retry-after, then run again and completed on attempt 1;
 * - usage limit (codex): released uncounted (a provider pause), then completed on attempt 1;
 * - server error (claude): retried, and attempt 2 resumes attempt 1's session with its work;
 * - unreachable (codex): retried until the attempts are used up, each failing unreachable;
 * - permission denied (claude): failed at once, naming the tool;
 * - hung (gemini): TIMEOUT at the persona's timeoutMs.
 */
const run = describeWithClis(["claude", "codex", "gemini"]);

let server: ModelServer;
let trap: TrapProxy;
let dir: World["dir"];
beforeAll(async () => {
  ({ server, trap, dir } = await openWorld({ kind: "text", text: "" }, "agent-cli-failures"));
});
afterAll(() => closeWorld({ server, trap, dir }));

const roster = (args: string[]) => runRoster({ trap, dir }, args, 240_000);

run("failure classes of the real CLIs through roster start", () => {
  it("auth fails at once naming the variable; rate and usage limits pause the provider uncounted; a server error is retried and resumed; unreachable is retried; a denied tool fails at once; a hang times out", async () => {
    makeRepo(dir.path, "app");
    const personas = join(dir.path, "personas");
    mkdirSync(personas);
    const dead = await closedPort();
    server.setScenario({
      kind: "route",
      routes: [
        { when: "MARKER-AUTH", then: { kind: "auth" } },
        { when: "MARKER-RATE", then: { kind: "first", requests: 1, serve: { kind: "rate-limit", retryAfterS: 2 }, then: { kind: "text", text: "done after the rate limit" } } },
        { when: "MARKER-USAGE", then: { kind: "first", requests: 1, serve: { kind: "usage-limit", resetInMs: 1_000 }, then: { kind: "text", text: "done after the usage limit" } } },
        // Attempt 1: the tool call that writes wip.txt, then a 500. Attempt 2 (resumed): the answer.
        { when: "MARKER-SERVER", then: { kind: "first", requests: 2, serve: { kind: "write-then-fail", path: "wip.txt", content: "work in progress\n" }, then: { kind: "text", text: "finished what attempt 1 started" } } },
        { when: "MARKER-DENIED", then: { kind: "write", path: "denied.txt", content: "x\n", text: "claims to have written" } },
        { when: "MARKER-HANG", then: { kind: "hang" } },
      ],
      otherwise: { kind: "text", text: "(unscripted)" },
    });
    const persona = (id: string, cli: string, marker: string, options: { extra?: string[]; front?: string[]; baseUrl?: string } = {}) => {
      const url = options.baseUrl ?? server.url;
      const lines = [
        "---",
        `id: ${id}`,
        `name: ${id}`,
        ...agentAdapterLines(cli, url),
        ...(options.extra ?? []),
        ...(options.front ?? ["timeoutMs: 120000"]),
        "retry:",
        "  maxAttempts: 3",
        "  backoff: fixed",
        "  baseMs: 200",
        "  maxMs: 200",
        "  jitter: 0",
        "---",
        `You are ${id}. ${marker}`,
        "",
      ];
      writeFileSync(join(personas, `${id}.md`), lines.join("\n"));
    };
    const worktree = ["  workspace:", "    kind: worktree", "    repo: ../app", "    base: main", "    keep: never", "    autoCommit: true"];
    persona("auth", "claude", "MARKER-AUTH");
    persona("rate", "gemini", "MARKER-RATE", { front: ["timeoutMs: 120000", "provider: gemini-test"] });
    persona("usage", "codex", "MARKER-USAGE", { extra: ["  cwd: ../app"], front: ["timeoutMs: 120000", "provider: openai-test"] });
    persona("server", "claude", "MARKER-SERVER", { extra: worktree });
    persona("unreachable", "codex", "MARKER-UNREACHABLE", { extra: ["  cwd: ../app"], baseUrl: `http://127.0.0.1:${dead}` });
    persona("denied", "claude", "MARKER-DENIED", { extra: ['  args: ["--permission-mode", "default"]'] });
    persona("hung", "gemini", "MARKER-HANG", { front: ["timeoutMs: 4000"] });
    const db = join(dir.path, "team.db");
    const ids = ["auth", "rate", "usage", "server", "unreachable", "denied", "hung"];
    const init = await roster(["init", "--db", db, "--personas", personas]);
    expect(init.code, init.stderr).toBe(0);
    for (const id of ids) {
      const added = await roster(["add", "--db", db, "--persona", id, "--title", `${id} task`]);
      expect(added.code, added.stderr).toBe(0);
    }
    const started = await roster(["start", "--db", db, "--personas", personas, "--exit-when-idle", "--no-metrics", "--log-level", "warn"]);
    expect(started.code, started.stderr).toBe(0);

    const store = await openStore({ path: db });
    const tasks = new Map<string, TaskDetail>();
    let database: string;
    try {
      for (const [i, id] of ids.entries()) tasks.set(id, await store.tasks.get({ taskId: i + 1 }));
      database = (await store.maintenance.identity()).id;
    } finally {
      await store.close();
    }
    const task = (id: string) => tasks.get(id)!;
    const error = (id: string) => task(id).error as { code: string; message: string; retryable: boolean; details: Record<string, any> };
    const events = (id: string, type: string) => task(id).events.filter((e) => e.type === type);

    // auth: failed on attempt 1 of 3, not retried, naming the variable, in the CLI's words.
    expect([task("auth").status, task("auth").attempts], JSON.stringify(task("auth").error)).toEqual(["failed", 1]);
    expect(error("auth")).toMatchObject({ retryable: false, details: { failure: "auth" } });
    expect(error("auth").message).toContain(KEY_VAR);
    expect(error("auth").message).toMatch(/Invalid API key/);

    // rate limit: released uncounted with the CLI's message, the provider paused for its retry-after, then completed on attempt 1.
    expect([task("rate").status, task("rate").attempts], JSON.stringify(task("rate").error)).toEqual(["completed", 1]);
    const rateReleased = events("rate", "task:released");
    expect(rateReleased, JSON.stringify(task("rate").events.map((e) => [e.type, e.attempt, e.data]))).toHaveLength(1);
    expect(String((rateReleased[0]!.data as { reason: string }).reason)).toMatch(/^rate-limit: /);
    const rateCalls = server.requests.filter((r) => r.provider === "gemini" && JSON.stringify(r.body).includes("MARKER-RATE"));
    expect(rateCalls.length).toBeGreaterThanOrEqual(2);
    const reclaimed = task("rate").events.filter((e) => e.type === "task:claimed");
    expect(reclaimed).toHaveLength(2);
    // The second claim waited out the retry-after the CLI reported (2 s).
    expect(reclaimed[1]!.at - rateReleased[0]!.at).toBeGreaterThanOrEqual(1_900);

    // usage limit: a provider pause, not a counted attempt.
    expect([task("usage").status, task("usage").attempts], JSON.stringify(task("usage").error)).toEqual(["completed", 1]);
    const usageReleased = events("usage", "task:released");
    expect(usageReleased, JSON.stringify(task("usage").events.map((e) => [e.type, e.attempt, e.data]))).toHaveLength(1);
    expect(String((usageReleased[0]!.data as { reason: string }).reason)).toMatch(/^usage-limit: .*usage limit/i);
    expect((task("usage").result as { text: string }).text).toBe("done after the usage limit");

    // server error: retried; attempt 2 resumed attempt 1's session and found its file in its worktree.
    expect([task("server").status, task("server").attempts], JSON.stringify(task("server").error)).toEqual(["completed", 2]);
    expect(events("server", "task:retrying")).toHaveLength(1);
    const serverResult = task("server").result as Record<string, any>;
    expect(serverResult.text).toBe("finished what attempt 1 started");
    expect(serverResult.resumed).toMatchObject({ sessionId: expect.any(String), wip: `refs/roster/wip/${database}/4/1`, files: ["wip.txt"] });
    expect(git(join(dir.path, "app"), "show", `${serverResult.workspace.branch}:wip.txt`)).toBe("work in progress");

    // unreachable: retryable, retried until the attempts ran out.
    expect([task("unreachable").status, task("unreachable").attempts], JSON.stringify(task("unreachable").error)).toEqual(["failed", 3]);
    expect(error("unreachable")).toMatchObject({ retryable: true, details: { failure: "unreachable" } });
    expect(events("unreachable", "task:retrying")).toHaveLength(2);

    // permission denied: failed at once, naming the tool.
    expect([task("denied").status, task("denied").attempts], JSON.stringify(task("denied").error)).toEqual(["failed", 1]);
    expect(error("denied")).toMatchObject({ retryable: false, details: { failure: "permission-denied", tool: "Write" } });
    expect(error("denied").message).toContain("Write");

    // hung: the attempt timed out (and, being retryable, was retried to the end).
    expect(task("hung").status).toBe("failed");
    expect(error("hung").code).toBe("TIMEOUT");

    expect(trap.seen).toEqual([]);
  }, 300_000);
});
