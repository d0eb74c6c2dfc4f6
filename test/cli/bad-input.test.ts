import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStore, type TaskRecord } from "../../src/store/index.js";
import { makeTempDir, type TempDir } from "../helpers/tmp.js";
import { makeTemplate, roster, rosterJson, tableCounts, type Template } from "./helpers.js";

/**
 * Bad input on the command line: one line on stderr naming what and where,
 * exit 2, and nothing written. Every case runs against one shared database
 * holding a pending task (1) and a cancelled one (2); after each case every
 * table's row count is what it was (each transition also writes an event row,
 * so an update would show too).
 */
let template: Template;
let files: TempDir;
let db: string;
let baseline: Record<string, number>;

beforeAll(async () => {
  template = await makeTemplate();
  db = template.copy().db;
  const store = await openStore({ path: db });
  await store.tasks.enqueue({ tasks: [{ persona: "reviewer", title: "pending" }, { persona: "reviewer", title: "cancelled" }], now: Date.now() });
  await store.tasks.cancel({ taskId: 2, now: Date.now() });
  await store.close();
  baseline = await tableCounts(db);

  files = makeTempDir("roster-cli-bad-");
  const plan = (name: string, text: string) => writeFileSync(files.path(name), text);
  plan("cycle.json", JSON.stringify({ tasks: [{ ref: "a", persona: "reviewer", title: "A", dependsOn: ["b"] }, { ref: "b", persona: "reviewer", title: "B", dependsOn: ["a"] }] }));
  plan("self.yaml", "tasks:\n  - ref: a\n    persona: reviewer\n    title: A\n    dependsOn: [a]\n");
  plan("unknown-ref.json", JSON.stringify({ tasks: [{ ref: "a", persona: "reviewer", title: "A", dependsOn: ["zz"] }] }));
  plan("ghost.json", JSON.stringify({ tasks: [{ ref: "ok", persona: "reviewer", title: "fine" }, { ref: "g", persona: "ghost", title: "G" }] }));
  plan("syntax.json", '{"tasks": [\n  {"persona": "reviewer", "title": "A",}\n]}\n');
  plan("syntax.yaml", "tasks:\n  - persona: reviewer\n    title: A\n   dependsOn: [1\n");
  plan("empty.json", JSON.stringify({ tasks: [] }));
  plan("extra-field.yaml", "tasks:\n  - persona: reviewer\n    title: A\n    owner: me\n");
  plan("plan.txt", "tasks: []\n");
  mkdirSync(files.path("bad-personas"));
  writeFileSync(files.path("bad-personas", "x.md"), "---\nid: Bad Id\nname: X\nadapter: { kind: echo }\n---\nBody.\n");
  writeFileSync(files.path("not-a-folder"), "");
});

afterAll(() => {
  files.cleanup();
  template.cleanup();
});

interface Case {
  name: string;
  args: () => string[];
  stderr: RegExp;
  env?: Record<string, string>;
}

const f = (name: string) => files.path(name);

const cases: Case[] = [
  { name: "add with an unknown persona", args: () => ["add", "--persona", "ghost", "--title", "T"], stderr: /^roster: PERSONA_NOT_FOUND: --persona: unknown persona "ghost"$/ },
  { name: "add with a malformed JSON payload", args: () => ["add", "--persona", "reviewer", "--title", "T", "--payload", "{ms: 5}"], stderr: /^roster: VALIDATION: --payload: not valid JSON \(.+\)$/ },
  { name: "add without a title", args: () => ["add", "--persona", "reviewer"], stderr: /^roster: VALIDATION: --title: required/ },
  { name: "add with an empty title", args: () => ["add", "--persona", "reviewer", "--title", "  "], stderr: /^roster: VALIDATION: --title: must not be empty$/ },
  { name: "add depending on a non-numeric id", args: () => ["add", "--persona", "reviewer", "--title", "T", "--depends-on", "1,x"], stderr: /^roster: VALIDATION: --depends-on: must be a positive integer, got "x"$/ },
  { name: "add depending on a task that does not exist", args: () => ["add", "--persona", "reviewer", "--title", "T", "--depends-on", "1,999"], stderr: /^roster: DEPENDENCY_NOT_FOUND: --depends-on: task 999 does not exist$/ },
  { name: "add with a non-numeric priority", args: () => ["add", "--persona", "reviewer", "--title", "T", "--priority", "high"], stderr: /^roster: VALIDATION: --priority: must be an integer, got "high"$/ },
  { name: "add with a priority out of range", args: () => ["add", "--persona", "reviewer", "--title", "T", "--priority", "5000"], stderr: /^roster: VALIDATION: --priority: .*1000/ },
  { name: "add with zero max attempts", args: () => ["add", "--persona", "reviewer", "--title", "T", "--max-attempts", "0"], stderr: /^roster: VALIDATION: --max-attempts: must be an integer >= 1, got "0"$/ },
  { name: "add with a negative delay", args: () => ["add", "--persona", "reviewer", "--title", "T", "--delay", "-5"], stderr: /^roster: VALIDATION: --delay: must be an integer >= 0, got "-5"$/ },
  { name: "add with a payload over ROSTER_MAX_PAYLOAD_BYTES", args: () => ["add", "--persona", "reviewer", "--title", "T", "--payload", '"0123456789"'], env: { ROSTER_MAX_PAYLOAD_BYTES: "8" }, stderr: /^roster: PAYLOAD_TOO_LARGE: .*12 bytes of JSON, over the limit of 8$/ },
  { name: "a plan file with a dependency cycle", args: () => ["add", "--file", f("cycle.json")], stderr: /^roster: DEPENDENCY_CYCLE: \S*cycle\.json: .*dependency cycle a -> b -> a$/ },
  { name: "a plan file whose task depends on itself", args: () => ["add", "--file", f("self.yaml")], stderr: /^roster: SELF_DEPENDENCY: \S*self\.yaml: tasks\[0\] \(ref "a"\)\.dependsOn: a task cannot depend on itself/ },
  { name: "a plan file depending on an unknown ref", args: () => ["add", "--file", f("unknown-ref.json")], stderr: /^roster: DEPENDENCY_NOT_FOUND: \S*unknown-ref\.json: .*no task in this batch has ref "zz"$/ },
  { name: "a plan file with an unknown persona after a good task", args: () => ["add", "--file", f("ghost.json")], stderr: /^roster: PERSONA_NOT_FOUND: \S*ghost\.json: tasks\[1\] \(ref "g"\)\.persona: unknown persona "ghost"$/ },
  { name: "a JSON plan with a syntax error", args: () => ["add", "--file", f("syntax.json")], stderr: /^roster: VALIDATION: \S*syntax\.json: line 2 column \d+: not valid JSON/ },
  { name: "a YAML plan with a syntax error", args: () => ["add", "--file", f("syntax.yaml")], stderr: /^roster: VALIDATION: \S*syntax\.yaml: line 4 column \d+: not valid YAML/ },
  { name: "a plan file without tasks", args: () => ["add", "--file", f("empty.json")], stderr: /^roster: VALIDATION: \S*empty\.json: plan\.tasks: a plan needs at least one task$/ },
  { name: "a plan file with an unknown field", args: () => ["add", "--file", f("extra-field.yaml")], stderr: /^roster: VALIDATION: \S*extra-field\.yaml: plan\.tasks\[0\]: .*"owner"/ },
  { name: "a plan file that does not exist", args: () => ["add", "--file", f("missing.json")], stderr: /^roster: VALIDATION: \S*missing\.json: cannot read plan file \(no such file\)$/ },
  { name: "a plan file with an unknown extension", args: () => ["add", "--file", f("plan.txt")], stderr: /^roster: VALIDATION: \S*plan\.txt: a plan file must end in \.json, \.yaml or \.yml$/ },
  { name: "a plan file together with task flags", args: () => ["add", "--file", f("cycle.json"), "--persona", "reviewer"], stderr: /^roster: VALIDATION: --file: cannot be combined with --persona/ },
  { name: "show with a non-numeric id", args: () => ["show", "abc"], stderr: /^roster: VALIDATION: task id: must be a positive integer, got "abc"$/ },
  { name: "show without an id", args: () => ["show"], stderr: /^roster: USAGE: missing required argument 'id'/ },
  { name: "show of a task that does not exist", args: () => ["show", "999"], stderr: /^roster: TASK_NOT_FOUND: taskId: task 999 does not exist$/ },
  { name: "events with id 0", args: () => ["events", "0"], stderr: /^roster: VALIDATION: task id: must be a positive integer, got "0"$/ },
  { name: "retry of a pending task", args: () => ["retry", "1"], stderr: /^roster: INVALID_STATE: task 1 is pending; only failed or cancelled tasks can be retried$/ },
  { name: "cancel of a cancelled task", args: () => ["cancel", "2"], stderr: /^roster: INVALID_STATE: task 2 is cancelled; only unfinished tasks can be cancelled$/ },
  { name: "cancel without an id", args: () => ["cancel"], stderr: /^roster: USAGE: missing required argument 'id'/ },
  { name: "an unknown option", args: () => ["ls", "--colour"], stderr: /^roster: USAGE: unknown option '--colour'/ },
  { name: "an unknown command", args: () => ["list"], stderr: /^roster: USAGE: unknown command 'list'/ },
  { name: "ls with an unknown status", args: () => ["ls", "--status", "done"], stderr: /^roster: VALIDATION: --status: "done" is not one of waiting, pending/ },
  { name: "ls with a negative limit", args: () => ["ls", "--limit", "-1"], stderr: /^roster: VALIDATION: --limit: must be an integer >= 0, got "-1"$/ },
  { name: "prune without --older-than", args: () => ["prune"], stderr: /^roster: USAGE: required option '--older-than <duration>' not specified/ },
  { name: "prune with a malformed duration", args: () => ["prune", "--older-than", "7 days"], stderr: /^roster: VALIDATION: --older-than: must be a duration such as 7d/ },
  { name: "start with concurrency 0", args: () => ["start", "--concurrency", "0"], stderr: /^roster: VALIDATION: --concurrency: must be an integer >= 1, got "0"$/ },
  { name: "start with --no-metrics and a metrics port", args: () => ["start", "--no-metrics", "--metrics-port", "9000"], stderr: /^roster: VALIDATION: --no-metrics: cannot be combined with --metrics-port/ },
  { name: "start with an unknown synchronous mode", args: () => ["start", "--synchronous", "OFF"], stderr: /^roster: VALIDATION: --synchronous: must be NORMAL or FULL, got "OFF"$/ },
  { name: "start with an unknown log level", args: () => ["start", "--log-level", "loud"], stderr: /^roster: USAGE: option '--log-level <level>' argument 'loud' is invalid/ },
  { name: "start with an MCP token but no MCP port", args: () => ["start", "--mcp-token", "s3cret-token"], stderr: /^roster: VALIDATION: --mcp-host and --mcp-token need --mcp-port/ },
  { name: "start with a non-integer ROSTER_CONCURRENCY", args: () => ["start"], env: { ROSTER_CONCURRENCY: "lots" }, stderr: /^roster: CONFIG_INVALID: ROSTER_CONCURRENCY: must be an integer, got "lots"$/ },
  { name: "start with a persona file that does not validate", args: () => ["start", "--personas", f("bad-personas")], stderr: /^roster: PERSONA_INVALID: \S*x\.md: front matter\.id: must be lowercase/ },
];

describe("bad input prints one clear line, exits 2 and writes nothing", () => {
  it.concurrent.each(cases)("$name", async ({ args, stderr, env }) => {
    const res = await roster([...args(), "--db", db], { env: env ?? {}, cwd: files.dir });
    expect(res.code).toBe(2);
    expect(res.stdout).toBe("");
    expect(res.stderr.endsWith("\n")).toBe(true);
    expect(res.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(res.stderr.trimEnd()).toMatch(stderr);
    expect(await tableCounts(db)).toEqual(baseline);
  });
});

describe("bad input leaves the task list as it was", () => {
  const headline: Case[] = [cases[0]!, cases[1]!, cases[11]!, cases[23]!];
  it.each(headline)("roster ls --json --limit 0 is the same before and after: $name", async ({ args }) => {
    const before = await rosterJson<TaskRecord[]>(["ls", "--limit", "0", "--db", db]);
    const res = await roster([...args(), "--db", db], { cwd: files.dir });
    expect(res.code).toBe(2);
    expect(await rosterJson<TaskRecord[]>(["ls", "--limit", "0", "--db", db])).toEqual(before);
    expect(before.map((t) => t.id)).toEqual([1, 2]);
  });
});

describe("bad input never creates a database", () => {
  it("refuses a --db path with no database for a read command, without creating the file", async () => {
    const path = files.path("nothing-here.db");
    const res = await roster(["ls", "--db", path]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^roster: VALIDATION: --db \S*nothing-here\.db: no roster database there; run `roster init` first/);
    expect(existsSync(path)).toBe(false);
  });

  it("init with a persona file that does not validate creates no database", async () => {
    const path = files.path("init-bad.db");
    const res = await roster(["init", "--db", path, "--personas", f("bad-personas")]);
    expect(res.code).toBe(2);
    expect(res.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(res.stderr).toMatch(/^roster: PERSONA_INVALID: \S*x\.md: front matter\.id/);
    expect(existsSync(path)).toBe(false);
  });

  it("init with --personas naming a file refuses and creates no database", async () => {
    const path = files.path("init-file.db");
    const res = await roster(["init", "--db", path, "--personas", f("not-a-folder")]);
    expect(res.code).toBe(2);
    expect(res.stderr.trimEnd()).toMatch(/^roster: VALIDATION: --personas \S*not-a-folder: is a file, not a folder$/);
    expect(existsSync(path)).toBe(false);
  });
});
