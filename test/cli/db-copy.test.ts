import { readFileSync, existsSync, readdirSync } from "node:fs";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CopySummary } from "../../src/store/copy/copy.js";
import type { TaskRecord } from "../../src/store/index.js";
import { usePostgres } from "../helpers/postgres.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { buildHistory, cliJson, pgState, type History } from "./db-copy-fixture.js";
import { roster, rosterOk } from "./helpers.js";

/**
 * Issue 19, deliverable 6: `roster db copy` moves a SQLite database to PostgreSQL (and
 * back) with its history, through the real CLI against a real SQLite file and the
 * test's private PostgreSQL. The copy must answer every read command exactly as the
 * original does, and a supervisor on the copy must finish the work left pending.
 */
const server = await usePostgres();

/** Every read a user would compare, as JSON: status (without its clock), ls, cost two ways, show and why of every task, schedules, agents. */
async function reads(db: string, taskIds: number[]): Promise<Record<string, unknown>> {
  const json = <T>(args: string[]) => cliJson<T>([...args, "--db", db]);
  const { at: _at, ...status } = await json<Record<string, unknown>>(["status"]);
  const out: Record<string, unknown> = {
    status,
    ls: await json(["ls", "--limit", "0"]),
    cost: await json(["cost"]),
    costByModel: await json(["cost", "--by", "model"]),
    schedules: await json(["schedule", "ls"]),
    agents: await json(["agents", "--all"]),
  };
  for (const id of taskIds) {
    out[`show ${id}`] = await json(["show", String(id)]);
    const { at: _whyAt, ...why } = await json<Record<string, unknown>>(["why", String(id)]);
    out[`why ${id}`] = why;
  }
  return out;
}

describe.skipIf(!server.available)("roster db copy", () => {
  let temp: TempDir;
  let source: string;
  let personas: string;
  let history: History;
  let url: string;
  let taskIds: number[];
  let sourceBytes: Buffer;
  let copy: { code: number | null; stdout: string; stderr: string };
  let before: Record<string, unknown>;
  let after: Record<string, unknown>;

  // The move itself, once for the file: the tests below each check one thing about it.
  beforeAll(async () => {
    temp = makeTempDir("roster-db-copy-");
    source = temp.path("roster.db");
    personas = temp.path("personas");
    history = await buildHistory(source, personas);
    taskIds = Object.values(history.ids).sort((a, b) => a - b);
    url = await server.server().newDatabase("roster_copy");
    before = await reads(source, taskIds);
    sourceBytes = readFileSync(source);
    copy = await roster(["db", "copy", "--from", source, "--to", url, "--batch-size", "3", "--json"], { cwd: temp.dir, timeoutMs: 120_000 });
    after = copy.code === 0 ? await reads(url, taskIds) : {};
  }, 300_000);
  afterAll(() => temp?.cleanup());

  it("copies SQLite to PostgreSQL in batches with progress on stderr, ids kept, the source only read", () => {
    expect(copy.code, copy.stderr).toBe(0);
    expect(copy.stderr).toMatch(new RegExp(`^db copy: tasks ${taskIds.length}/${taskIds.length}$`, "m"));
    const summary = JSON.parse(copy.stdout) as CopySummary;
    expect(summary.direction).toBe("sqlite-to-postgres");
    expect(summary.tasks).toBe(taskIds.length);
    const rows = Object.fromEntries(summary.tables.map((t) => [t.table, t.rows]));
    expect(rows).toMatchObject({ personas: 2, tasks: taskIds.length, task_status: taskIds.length, task_dependencies: 6, human_requests: 4, usage: 8, spend: 18, schedules: 1, agents: 2, model_prices: 1, concurrency_keys: 1 });
    // Every table SQLite has is one PostgreSQL holds (task_keys becomes task_status.concurrency_key there).
    expect(summary.notCopied).toEqual([]);
    expect(summary.columnsNotCopied).toEqual([]);
    expect(summary.nextIds.tasks).toEqual({ id: Math.max(...taskIds) + 1 });
    expect(readFileSync(source).equals(sourceBytes)).toBe(true);
  });

  it("the copy answers status, ls, show, why, cost, schedules and agents exactly as the original", () => {
    expect(Object.keys(after)).toHaveLength(6 + 2 * taskIds.length);
    expect(after).toEqual(before);
  });

  it("the copy keeps each task's concurrency key where PostgreSQL looks for it", async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const keyed = (await client.query("SELECT task_id, concurrency_key FROM task_status WHERE concurrency_key IS NOT NULL")).rows;
      expect(keyed).toEqual([{ task_id: String(history.ids.keyed), concurrency_key: "repo-a" }]);
      expect((await client.query("SELECT key, max_running FROM concurrency_keys")).rows).toEqual([{ key: "repo-a", max_running: 1 }]);
    } finally {
      await client.end();
    }
  });

  it("refuses to copy into a database that already holds tasks, and leaves it untouched", async () => {
    const state = await pgState(url);
    const res = await roster(["db", "copy", "--from", source, "--to", url], { cwd: temp.dir });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^roster: TARGET_NOT_EMPTY: --to postgres:\/\/.*already holds \d+ row\(s\) in tasks/m);
    expect(res.stdout).toBe("");
    expect(await pgState(url)).toEqual(state);
  });

  it("a supervisor started on the copy finishes the work left pending, with new ids after the copied ones", async () => {
    await rosterOk(["start", "--db", url, "--personas", personas, "--exit-when-idle", "--no-metrics", "--log-level", "silent"], { cwd: temp.dir, timeoutMs: 120_000 });
    const tasks = await cliJson<TaskRecord[]>(["ls", "--limit", "0", "--db", url]);
    const byId = new Map(tasks.map((t) => [t.id, t]));
    const states = Object.fromEntries(Object.entries(history.ids).map(([name, id]) => [name, [byId.get(id)?.status, byId.get(id)?.attempts]]));
    expect(states).toEqual(history.expectedAfterStart);
    expect(tasks).toHaveLength(taskIds.length);
    // The answered question reached the attempt that ran after the copy.
    const asked = await cliJson<{ events: Array<{ type: string; id: number }> }>(["show", String(history.ids.asked), "--db", url]);
    expect(asked.events.map((e) => e.type)).toEqual(expect.arrayContaining(["input:requested", "input:answered", "task:completed"]));
    const added = await cliJson<{ id: number }>(["add", "--db", url, "--persona", "worker", "--title", "after the move"]);
    expect(added.id).toBe(Math.max(...taskIds) + 1);
  }, 180_000);

  it("copies PostgreSQL back to a new SQLite file that answers as PostgreSQL does", async () => {
    const back = temp.path("back.db");
    const res = await roster(["db", "copy", "--from", url, "--to", back, "--json"], { cwd: temp.dir, timeoutMs: 120_000 });
    expect(res.code, res.stderr).toBe(0);
    expect((JSON.parse(res.stdout) as { direction: string }).direction).toBe("postgres-to-sqlite");
    const ids = (await cliJson<TaskRecord[]>(["ls", "--limit", "0", "--db", url])).map((t) => t.id);
    expect(await reads(back, ids)).toEqual(await reads(url, ids));
    const sqlite = (file: string, sql: string) => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare(sql).all();
      } finally {
        db.close();
      }
    };
    // SQLite's own bookkeeping is there as SQLite keeps it: spend totals, and task_keys made by its triggers from the policies.
    const spend = "SELECT scope, key, window_ms, window_start, tokens, round(cost_usd, 9) AS cost FROM spend ORDER BY 1, 2, 3, 4";
    expect(sqlite(back, spend)).toHaveLength(18);
    expect(sqlite(back, spend)).toEqual(sqlite(source, spend));
    expect(sqlite(back, "SELECT task_id, key FROM task_keys")).toEqual([{ task_id: history.ids.keyed, key: "repo-a" }]);
    expect(sqlite(back, "SELECT key, running, max_running FROM concurrency_keys")).toEqual([{ key: "repo-a", running: 0, max_running: 1 }]);
    // Only the finished file is there: no temporary file left beside it.
    expect(readdirSync(temp.dir).filter((f) => f.includes(".copy-"))).toEqual([]);
  }, 180_000);

  it("refuses to copy into an existing SQLite file, leaving it byte for byte as it was", async () => {
    const bytes = readFileSync(source);
    const res = await roster(["db", "copy", "--from", url, "--to", source], { cwd: temp.dir });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^roster: TARGET_NOT_EMPTY: --to .*roster\.db: a file is already there/m);
    expect(readFileSync(source).equals(bytes)).toBe(true);
  });

  it("refuses bad input with roster: CODE: message naming the flag, writing nothing", async () => {
    const fresh = await server.server().newDatabase("roster_copy_bad");
    const cases: Array<[string[], number, RegExp]> = [
      [["--from", source, "--to", temp.path("other.db")], 2, /^roster: VALIDATION: --from, --to: both are SQLite files/m],
      [["--from", temp.path("missing.db"), "--to", fresh], 2, /^roster: VALIDATION: --from .*missing\.db: no such file/m],
      [["--from", temp.path("no-folder", "x.db"), "--to", fresh], 2, /^roster: DATABASE_PATH_INVALID: --from .*folder .*no-folder does not exist/m],
      [["--from", source, "--to", fresh, "--batch-size", "0"], 2, /^roster: VALIDATION: --batch-size: must be an integer from 1 to 100000, got "0"/m],
      [["--from", source], 2, /^roster: USAGE: required option '--to <db>' not specified/m],
    ];
    for (const [args, code, message] of cases) {
      const res = await roster(["db", "copy", ...args], { cwd: temp.dir });
      expect(res.stderr, args.join(" ")).toMatch(message);
      expect(res.code, args.join(" ")).toBe(code);
    }
    expect(await pgState(fresh)).toEqual({});
    expect(existsSync(temp.path("other.db"))).toBe(false);
  });
});
