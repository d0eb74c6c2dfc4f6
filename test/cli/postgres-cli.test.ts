import { describe, expect, it } from "vitest";
import type { TaskRecord } from "../../src/store/index.js";
import { usePostgres } from "../helpers/postgres.js";
import { makeTempDir } from "../helpers/tmp.js";
import { roster, rosterJson, rosterOk } from "./helpers.js";

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

  it("a URL whose database does not exist is refused with roster: CODE: message naming it, exit non-zero", async () => {
    const url = new URL(server.url());
    url.pathname = "/roster_no_such_database";
    const res = await roster(["ls", "--db", url.toString()]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/^roster: DATABASE_INVALID: .*roster_no_such_database/m);
  });
});
