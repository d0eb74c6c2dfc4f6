import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type Store, type TaskDetail, type TaskEvent, type TaskInput, type TaskRecord } from "../../src/store/index.js";
import { makeTempDir } from "../helpers/tmp.js";
import { makeTemplate, roster, rosterJson, rosterOk, type Template } from "./helpers.js";

// Spawning the CLI is the slow part on a shared 2-core machine, so tests set up and
// check state through the store in-process and spawn only the command under test.

let template: Template;
beforeAll(async () => {
  template = await makeTemplate();
});
afterAll(() => template.cleanup());

/** A copy of the template database, with the store open for setup and checks. */
async function fixture(): Promise<{ dir: string; db: string; store: Store; cleanup(): Promise<void> }> {
  const copy = template.copy();
  const store = await openStore({ path: copy.db });
  return {
    dir: copy.dir,
    db: copy.db,
    store,
    cleanup: async () => {
      await store.close();
      copy.cleanup();
    },
  };
}

async function enqueue(store: Store, tasks: TaskInput[], now = Date.now()): Promise<number[]> {
  return (await store.tasks.enqueue({ tasks, now })).ids;
}

describe("roster init", () => {
  it("creates the database, copies the bundled personas into an empty folder and syncs them", async () => {
    const temp = makeTempDir("roster-cli-init-");
    try {
      const out = await rosterJson<{ copied: string[]; personas: string[] }>(["init"], { cwd: temp.dir });
      expect(out.personas).toEqual(["implementer", "planner", "reviewer"]);
      expect(out.copied).toHaveLength(3);
      expect(existsSync(temp.path("roster.db"))).toBe(true);
      expect(readdirSync(temp.path("personas")).sort()).toEqual(["implementer.md", "planner.md", "reviewer.md"]);
    } finally {
      temp.cleanup();
    }
  });

  it("is idempotent: run again, it copies nothing, leaves persona files as they are and syncs their edits", async () => {
    const f = await fixture();
    try {
      const personas = join(f.dir, "personas");
      const first = await rosterJson<{ copied: string[] }>(["init", "--db", f.db, "--personas", personas]);
      expect(first.copied).toHaveLength(3);
      const file = join(personas, "reviewer.md");
      const edited = readFileSync(file, "utf8").replace("name: Reviewer", "name: Strict Reviewer");
      writeFileSync(file, edited);
      const again = await rosterJson<{ copied: string[] }>(["init", "--db", f.db, "--personas", personas]);
      expect(again.copied).toEqual([]);
      expect(readFileSync(file, "utf8")).toBe(edited);
      expect((await f.store.personas.get({ id: "reviewer" }))?.name).toBe("Strict Reviewer");
    } finally {
      await f.cleanup();
    }
  });
});

describe("roster personas", () => {
  it("lists each persona with its adapter kind, concurrency and whether its file is present", async () => {
    const f = await fixture();
    try {
      const listed = await rosterJson<Array<{ id: string; adapter: string; concurrency: number; filePresent: boolean }>>(["personas", "--db", f.db]);
      expect(listed.map((p) => [p.id, p.adapter, p.concurrency, p.filePresent])).toEqual([
        ["implementer", "flaky", 8, true],
        ["planner", "planner", 2, true],
        ["reviewer", "echo", 4, true],
      ]);
    } finally {
      await f.cleanup();
    }
  });

  it("shows a persona whose file is gone as missing", async () => {
    const f = await fixture();
    try {
      const gone = join(f.dir, "gone", "ghost.md");
      const config = { id: "ghost", name: "Ghost", adapter: { kind: "echo" }, concurrency: 1 };
      await f.store.personas.sync({ personas: [{ id: "ghost", name: "Ghost", definition: "Boo.", config, sourcePath: gone }], now: Date.now(), sourceDir: join(f.dir, "gone") });
      const table = await rosterOk(["personas", "--db", f.db]);
      expect(table).toMatch(/^ghost +Ghost +echo +1 +missing \(.*ghost\.md\)$/m);
      expect(table).toMatch(/^reviewer +Reviewer +echo +4 +\S*reviewer\.md$/m);
    } finally {
      await f.cleanup();
    }
  });
});

describe("roster add", () => {
  it("prints the new id, and {\"id\": N} with --json", async () => {
    const f = await fixture();
    try {
      expect(await rosterOk(["add", "--db", f.db, "--persona", "reviewer", "--title", "first"])).toBe("1\n");
      expect(await rosterJson(["add", "--db", f.db, "--persona", "reviewer", "--title", "second"])).toEqual({ id: 2 });
    } finally {
      await f.cleanup();
    }
  });

  it("stores every flag: description, dependencies, priority, payload, max attempts and delay", async () => {
    const f = await fixture();
    try {
      await enqueue(f.store, [{ persona: "reviewer", title: "a" }, { persona: "reviewer", title: "b" }]);
      const before = Date.now();
      const flags = ["--description", "do it", "--depends-on", "1,2", "--priority", "7", "--payload", '{"ms": 5, "tags": ["x"]}', "--max-attempts", "9", "--delay", "60000"];
      const { id } = await rosterJson<{ id: number }>(["add", "--db", f.db, "--persona", "implementer", "--title", "c", ...flags]);
      const task = await f.store.tasks.get({ taskId: id });
      expect(task).toMatchObject({ id: 3, persona: "implementer", title: "c", description: "do it", priority: 7, payload: { ms: 5, tags: ["x"] }, maxAttempts: 9, status: "waiting" });
      expect(task.dependsOn.sort()).toEqual([1, 2]);
      expect(task.runAt).toBeGreaterThanOrEqual(before + 60_000);
    } finally {
      await f.cleanup();
    }
  });

  it("enqueues a YAML plan with local refs and prints {\"ids\": {ref: id}} with --json", async () => {
    const f = await fixture();
    try {
      const plan = join(f.dir, "plan.yaml");
      writeFileSync(plan, "tasks:\n  - ref: build\n    persona: implementer\n    title: Build it\n  - ref: check\n    persona: reviewer\n    title: Check it\n    dependsOn: [build]\n");
      const out = await rosterJson<{ ids: Record<string, number> }>(["add", "--db", f.db, "--file", plan]);
      expect(out.ids).toEqual({ build: 1, check: 2 });
      const tasks = await f.store.tasks.list({ limit: 0 });
      expect(tasks.map((t) => [t.id, t.title, t.status, t.dependsOn])).toEqual([
        [1, "Build it", "pending", []],
        [2, "Check it", "waiting", [1]],
      ]);
    } finally {
      await f.cleanup();
    }
  });

  it("enqueues a JSON plan that also depends on existing ids, printing one id (and ref) per line", async () => {
    const f = await fixture();
    try {
      await enqueue(f.store, [{ persona: "reviewer", title: "existing" }]);
      const plan = join(f.dir, "plan.json");
      writeFileSync(plan, JSON.stringify({ tasks: [{ ref: "x", persona: "reviewer", title: "X", dependsOn: [1] }, { persona: "reviewer", title: "Y", dependsOn: ["x", 1] }] }));
      expect(await rosterOk(["add", "--db", f.db, "--file", plan])).toBe("2\tx\n3\n");
      expect((await f.store.tasks.get({ taskId: 3 })).dependsOn.sort()).toEqual([1, 2]);
    } finally {
      await f.cleanup();
    }
  });
});

describe("roster ls", () => {
  it("filters by status and persona and limits the count to the newest (100 by default, 0 for all)", async () => {
    const f = await fixture();
    try {
      await enqueue(f.store, Array.from({ length: 105 }, (_, i) => ({ persona: i < 100 ? "reviewer" : "implementer", title: `t${i + 1}` })));
      await f.store.tasks.cancel({ taskId: 104, now: Date.now() });
      const ids = async (args: string[]) => (await rosterJson<TaskRecord[]>(["ls", "--db", f.db, ...args])).map((t) => t.id);
      const [all, defaults, few, filtered] = await Promise.all([
        ids(["--limit", "0"]),
        ids([]),
        ids(["--limit", "3"]),
        ids(["--persona", "implementer", "--status", "cancelled,completed"]),
      ]);
      expect(all).toHaveLength(105);
      expect(all[0]).toBe(105);
      expect(defaults).toEqual(all.slice(0, 100));
      expect(few).toEqual([105, 104, 103]);
      expect(filtered).toEqual([104]);
    } finally {
      await f.cleanup();
    }
  });

  it("prints a table with one row per task, and every JSON task has the documented fields", async () => {
    const f = await fixture();
    try {
      await enqueue(f.store, [{ persona: "reviewer", title: "Review the\nparser" }]);
      const [table, json] = await Promise.all([rosterOk(["ls", "--db", f.db]), rosterJson<TaskRecord[]>(["ls", "--db", f.db])]);
      expect(table.split("\n")[0]).toMatch(/^ID +PERSONA +STATUS +ATTEMPTS +DEPENDS ON +TITLE +RESULT \/ ERROR$/);
      expect(table).toMatch(/^1 +reviewer +pending +0\/2 +Review the parser$/m);
      expect(json).toHaveLength(1);
      for (const key of ["id", "persona", "title", "status", "attempts", "result", "error", "dependsOn"]) expect(json[0]).toHaveProperty(key);
    } finally {
      await f.cleanup();
    }
  });
});

describe("roster show and roster events", () => {
  it("show gives the task with its dependencies, dependents and latest events, as JSON and as text", async () => {
    const f = await fixture();
    try {
      await f.store.tasks.enqueue({ tasks: [{ ref: "a", persona: "reviewer", title: "A" }, { ref: "b", persona: "reviewer", title: "B", dependsOn: ["a"] }, { persona: "reviewer", title: "C", dependsOn: ["b"] }], now: Date.now() });
      const [b, text] = await Promise.all([rosterJson<TaskDetail>(["show", "2", "--db", f.db]), rosterOk(["show", "2", "--db", f.db])]);
      expect(b).toMatchObject({ id: 2, persona: "reviewer", title: "B", status: "waiting", attempts: 0, result: null, error: null, dependsOn: [1] });
      expect(b.dependencies.map((d) => d.id)).toEqual([1]);
      expect(b.dependents.map((d) => d.id)).toEqual([3]);
      expect(b.events.map((e) => e.type)).toEqual(["task:enqueued"]);
      expect(text).toMatch(/^task 2: B$/m);
      expect(text).toMatch(/^depends on\nID +PERSONA +STATUS +TITLE\n1 +reviewer +pending +A$/m);
      expect(text).toMatch(/^dependents\nID +PERSONA +STATUS +TITLE\n3 +reviewer +waiting +C$/m);
    } finally {
      await f.cleanup();
    }
  });

  it("events lists type, at, attempt, agentId and data, oldest first", async () => {
    const f = await fixture();
    try {
      await enqueue(f.store, [{ persona: "reviewer", title: "A" }]);
      await f.store.tasks.cancel({ taskId: 1, by: "tester", reason: "not needed", now: Date.now() });
      const [events, text] = await Promise.all([rosterJson<TaskEvent[]>(["events", "1", "--db", f.db]), rosterOk(["events", "1", "--db", f.db])]);
      expect(events.map((e) => e.type)).toEqual(["task:enqueued", "task:cancelled"]);
      for (const e of events) expect(Object.keys(e)).toEqual(expect.arrayContaining(["type", "at", "attempt", "agentId", "data"]));
      expect(events[1]).toMatchObject({ agentId: "tester", attempt: 0, data: { reason: "not needed", from: "pending" } });
      expect(events[1]!.at).toBeGreaterThanOrEqual(events[0]!.at);
      expect(text).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} +task:cancelled +0 +tester +\{/m);
    } finally {
      await f.cleanup();
    }
  });
});

describe("README's list of event types", () => {
  it("names every type roster events shows of a task readied by its dependency, task:ready among them", async () => {
    const f = await fixture();
    try {
      const [a, b] = await enqueue(f.store, [{ persona: "reviewer", title: "A" }, { persona: "reviewer", title: "B" }]);
      await f.store.tasks.addDependency({ taskId: b!, dependsOn: a!, now: Date.now() });
      const agent = await f.store.agents.register({ name: "t", kind: "cli", heartbeatTimeoutMs: 60_000, now: Date.now() });
      const claimed = await f.store.tasks.claimById({ taskId: a!, agentId: agent.id, now: Date.now() });
      await f.store.tasks.completeIfLeased({ taskId: a!, leaseToken: claimed!.leaseToken, result: "ok", now: Date.now() });
      const events = [...(await rosterJson<TaskEvent[]>(["events", String(a), "--db", f.db])), ...(await rosterJson<TaskEvent[]>(["events", String(b), "--db", f.db]))];
      expect(events.find((e) => e.taskId === b && e.type === "task:ready")?.data).toEqual({ after: a });
      const readme = readFileSync(join(import.meta.dirname, "..", "..", "README.md"), "utf8");
      const listed = /^\| `events ID --json` \|.*$/m.exec(readme)![0];
      for (const type of new Set(events.map((e) => e.type))) expect(listed, type).toContain(`\`${type}\``);
    } finally {
      await f.cleanup();
    }
  });
});

describe("roster cancel and roster retry", () => {
  it("cancel blocks the dependents and retry brings the task and its dependents back", async () => {
    const f = await fixture();
    try {
      await f.store.tasks.enqueue({ tasks: [{ ref: "a", persona: "reviewer", title: "A" }, { persona: "reviewer", title: "B", dependsOn: ["a"] }], now: Date.now() });
      expect(await rosterJson(["cancel", "1", "--db", f.db])).toEqual({ id: 1, cancelled: [1], blocked: [2] });
      expect((await f.store.tasks.get({ taskId: 2 })).status).toBe("blocked");
      expect(await rosterOk(["retry", "1", "--db", f.db])).toBe("task 1: pending; waiting again: 2\n");
      expect((await f.store.tasks.list({ limit: 0 })).map((t) => t.status)).toEqual(["pending", "waiting"]);
    } finally {
      await f.cleanup();
    }
  });

  it("refuses to retry a task that has not failed, with exit 2 and the task unchanged", async () => {
    const f = await fixture();
    try {
      await enqueue(f.store, [{ persona: "reviewer", title: "A" }]);
      const res = await roster(["retry", "1", "--db", f.db]);
      expect(res.code).toBe(2);
      expect(res.stderr).toBe("roster: INVALID_STATE: task 1 is pending; only failed or cancelled tasks can be retried\n");
      expect(await f.store.tasks.events({ taskId: 1 })).toHaveLength(1);
    } finally {
      await f.cleanup();
    }
  });
});

describe("roster agents", () => {
  it("lists active agents, and inactive ones too with --all", async () => {
    const f = await fixture();
    try {
      const now = Date.now();
      await f.store.agents.register({ id: "sup-1", name: "supervisor", kind: "supervisor", heartbeatTimeoutMs: 600_000, now });
      await f.store.agents.register({ id: "old-1", name: "old", kind: "mcp", heartbeatTimeoutMs: 600_000, now });
      await f.store.agents.deregister({ agentId: "old-1", now });
      const [active, all] = await Promise.all([
        rosterJson<Array<{ id: string; status: string; kind: string }>>(["agents", "--db", f.db]),
        rosterOk(["agents", "--all", "--db", f.db]),
      ]);
      expect(active.map((a) => [a.id, a.kind, a.status])).toEqual([["sup-1", "supervisor", "active"]]);
      expect(all).toMatch(/^sup-1 +supervisor +supervisor +active +0 /m);
      expect(all).toMatch(/^old-1 +old +mcp +deregistered +0 /m);
    } finally {
      await f.cleanup();
    }
  });
});

describe("roster prune", () => {
  it("deletes the finished tasks older than the cut, with their events, and keeps the rest", async () => {
    const f = await fixture();
    try {
      const now = Date.now();
      const day = 86_400_000;
      await enqueue(f.store, [{ persona: "reviewer", title: "old" }, { persona: "reviewer", title: "recent" }, { persona: "reviewer", title: "open" }], now - 10 * day);
      await f.store.tasks.cancel({ taskId: 1, now: now - 8 * day });
      await f.store.tasks.cancel({ taskId: 2, now: now - day });
      expect(await rosterJson(["prune", "--older-than", "7d", "--db", f.db])).toMatchObject({ tasks: 1, events: 2 });
      expect((await f.store.tasks.list({ limit: 0 })).map((t) => t.title)).toEqual(["recent", "open"]);
    } finally {
      await f.cleanup();
    }
  });
});

describe("the program", () => {
  it("reads the database path from ROSTER_DB when --db is absent", async () => {
    const f = await fixture();
    try {
      await rosterOk(["add", "--persona", "reviewer", "--title", "via env"], { env: { ROSTER_DB: f.db } });
      expect((await f.store.tasks.list({ limit: 0 })).map((t) => t.title)).toEqual(["via env"]);
    } finally {
      await f.cleanup();
    }
  });

  it("prints the version from package.json with --version", async () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "package.json"), "utf8")) as { name: string; version: string };
    expect(pkg.name).toBe("roster-agents");
    expect(await rosterOk(["--version"])).toBe(`${pkg.version}\n`);
  });

  it("exits 0 on --help listing every command, and 2 without a command", async () => {
    const [help, none] = await Promise.all([roster(["--help"]), roster([])]);
    expect(help.code).toBe(0);
    for (const name of ["init", "start", "add", "ls", "show", "events", "retry", "cancel", "agents", "personas", "prune"]) {
      expect(help.stdout).toMatch(new RegExp(`^  ${name} `, "m"));
    }
    expect(none.code).toBe(2);
    expect(none.stdout).toBe("");
  });
});
