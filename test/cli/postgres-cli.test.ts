import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import type { TaskRecord } from "../../src/store/index.js";
import { usePostgres } from "../helpers/postgres.js";
import { startCutProxy } from "../helpers/tcp-proxy.js";
import { makeTempDir } from "../helpers/tmp.js";
import { BIN, roster, rosterJson, rosterOk } from "./helpers.js";

/**
 * Issue 19, step 5: `--db postgres://…` and ROSTER_DB select the PostgreSQL store for
 * every command, through the real CLI against the test cluster (test/helpers/postgres.ts).
 */
const server = await usePostgres();

describe.skipIf(!server.available)("roster on PostgreSQL", () => {
  it("init, add and start --exit-when-idle run echo tasks to completion with --db postgres://…; ls, show and status read them back", async () => {
    const url = await server.server().newDatabase("roster_cli");
    const temp = makeTempDir("roster-pg-cli-");
    try {
      expect(await rosterOk(["init", "--db", url], { cwd: temp.dir })).toContain("database ready");
      const first = await rosterJson<{ id: number }>(["add", "--db", url, "--persona", "reviewer", "--title", "first"], { cwd: temp.dir });
      const second = await rosterJson<{ id: number }>(["add", "--db", url, "--persona", "reviewer", "--title", "second", "--depends-on", String(first.id)], { cwd: temp.dir });
      expect(second.id).toBe(first.id + 1);
      // The same database through ROSTER_DB instead of the flag.
      const third = await rosterJson<{ id: number }>(["add", "--persona", "reviewer", "--title", "third"], { cwd: temp.dir, env: { ROSTER_DB: url } });

      await rosterOk(["start", "--db", url, "--exit-when-idle", "--no-metrics", "--log-level", "silent"], { cwd: temp.dir, timeoutMs: 120_000 });

      const tasks = (await rosterJson<TaskRecord[]>(["ls", "--limit", "0"], { cwd: temp.dir, env: { ROSTER_DB: url } })).sort((a, b) => a.id - b.id);
      expect(tasks.map((t) => [t.id, t.title, t.status, t.attempts])).toEqual([
        [first.id, "first", "completed", 1],
        [second.id, "second", "completed", 1],
        [third.id, "third", "completed", 1],
      ]);
      const shown = await rosterJson<{ events: Array<{ type: string }> }>(["show", String(second.id), "--db", url], { cwd: temp.dir });
      expect(shown.events.map((e) => e.type)).toEqual(expect.arrayContaining(["task:enqueued", "task:ready", "task:claimed", "task:completed"]));
      const status = await rosterJson<{ counts: unknown; running: unknown[] }>(["status", "--db", url], { cwd: temp.dir });
      expect(status.counts).toEqual({ reviewer: { completed: 3 } });
      expect(status.running).toEqual([]);
      // The SQLite default is untouched: no roster.db appeared in the folder.
      expect((await roster(["ls"], { cwd: temp.dir })).code).not.toBe(0);
    } finally {
      temp.cleanup();
    }
  });

  it("roster start waits for a server it cannot reach yet (down, restarting) instead of exiting, then runs the queue", async () => {
    // Hosts started with their database (or while it restarts) used to exit 1 at once: DATABASE_IO at open.
    const url = await server.server().newDatabase("roster_cli_wait");
    const temp = makeTempDir("roster-pg-cli-wait-");
    const target = new URL(url);
    const proxy = await startCutProxy(target.hostname, Number(target.port));
    try {
      await rosterOk(["init", "--db", url], { cwd: temp.dir });
      const task = await rosterJson<{ id: number }>(["add", "--db", url, "--persona", "reviewer", "--title", "waits for the server"], { cwd: temp.dir });
      proxy.cut("reset");
      const env: NodeJS.ProcessEnv = {};
      for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("ROSTER_")) env[key] = value;
      const child = spawn(process.execPath, [BIN, "start", "--db", proxy.url(url), "--exit-when-idle", "--no-metrics", "--log-level", "warn"], { cwd: temp.dir, env, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
      for (let i = 0; i < 300 && !stderr.includes("cannot be reached yet"); i++) await new Promise((r) => setTimeout(r, 100));
      expect(stderr, "the supervisor says it waits").toContain("the database cannot be reached yet; trying again");
      expect(child.exitCode).toBeNull();
      proxy.restore();
      expect(await exited, stderr).toBe(0);
      const shown = await rosterJson<{ status: string }>(["show", String(task.id), "--db", url], { cwd: temp.dir });
      expect(shown.status).toBe("completed");
    } finally {
      await proxy.close();
      temp.cleanup();
    }
  }, 120_000);

  it("roster budget, provider and breaker work on postgres://… as on SQLite: a spent task budget holds the task, roster why says so, a raise lifts it", async () => {
    const url = await server.server().newDatabase("roster_cli_budget");
    const temp = makeTempDir("roster-pg-cli-budget-");
    const run = (args: string[]) => rosterJson(args, { cwd: temp.dir, env: { ROSTER_DB: url } });
    try {
      await rosterOk(["init", "--db", url], { cwd: temp.dir });
      const task = await rosterJson<{ id: number }>(["add", "--db", url, "--persona", "reviewer", "--title", "held"], { cwd: temp.dir });
      // A limit of 0 tokens is spent already: the task is held before it ever runs.
      expect(await run(["budget", "set", "--task", String(task.id), "--tokens", "0"])).toMatchObject({ scope: "task", key: String(task.id), maxTokens: 0, exhausted: true });
      const why = await run(["why", String(task.id)]);
      expect((why as { reasons: Array<{ code: string }> }).reasons.map((r) => r.code)).toContain("budget_exhausted");
      expect(await run(["budget", "ls"])).toEqual([expect.objectContaining({ scope: "task", key: String(task.id), exhausted: true, source: "set" })]);
      expect(await run(["budget", "raise", "--task", String(task.id), "--tokens", "100"])).toMatchObject({ maxTokens: 100, exhausted: false });
      expect(await run(["budget", "rm", "--task", String(task.id)])).toMatchObject({ removed: true });
      expect(await run(["provider", "ls"])).toEqual([]);
      expect(await run(["breaker", "ls"])).toEqual([]);
      const events = (await run(["show", String(task.id)])) as { events: Array<{ type: string }> };
      expect(events.events.map((e) => e.type)).toEqual(expect.arrayContaining(["budget:set", "budget:raised", "budget:removed"]));
      // A budget on a task that does not exist: refused, nothing written.
      const refused = await roster(["budget", "set", "--task", "999", "--usd", "1"], { cwd: temp.dir, env: { ROSTER_DB: url } });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/^roster: TASK_NOT_FOUND: /m);
      expect(await run(["budget", "ls"])).toEqual([]);
    } finally {
      temp.cleanup();
    }
  });

  it("a URL whose database does not exist is refused with roster: CODE: message naming it, exit non-zero", async () => {
    const url = new URL(server.url());
    url.pathname = "/roster_no_such_database";
    const res = await roster(["ls", "--db", url.toString()]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/^roster: DATABASE_INVALID: .*roster_no_such_database/m);
  });
});
