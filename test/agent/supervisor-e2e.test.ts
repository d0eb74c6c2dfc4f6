import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStore } from "../../src/store/index.js";
import { FAKE_CLI, git, makeRepo, readRecord, tempDir } from "./helpers.js";

/**
 * The worked example of the README with the fake CLI: `roster start` runs a
 * planner agent whose plan becomes tasks, two implementer agents in worktrees of
 * a real repository, and a reviewer agent that receives their results.
 */
const BIN = resolve(dirname(fileURLToPath(import.meta.url)), "../../dist/src/cli/bin.js");

let dir: { path: string; cleanup: () => void };
beforeEach(() => {
  dir = tempDir("agent-e2e");
});
afterEach(() => dir.cleanup());

function roster(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { cwd: dir.path, encoding: "utf8", timeout: 120_000 }, (error, stdout, stderr) => {
      done({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

describe("agent personas under the supervisor", () => {
  it("prunes a crash's worktree, then runs a planner's plan: two implementers commit on their own branches, the reviewer gets their results", async () => {
    const repo = makeRepo(dir.path, "my-app");
    const personas = join(dir.path, "personas");
    mkdirSync(personas);
    const record = join(dir.path, "record.jsonl");
    const plan = {
      result: "two parts, then a review",
      tasks: [
        { ref: "a", persona: "implementer", title: "Part A", description: "Do A. [fake:commit]" },
        { ref: "b", persona: "implementer", title: "Part B", description: "Do B. [fake:commit]" },
        { ref: "r", persona: "reviewer", title: "Review", description: "Review A and B.", dependsOn: ["a", "b"] },
      ],
    };
    const agent = (profile: string, extra = "") =>
      `adapter:\n  kind: agent\n  profile: ${profile}\n  command: ${JSON.stringify(FAKE_CLI)}\n  env:\n    FAKE_AGENT_RECORD: ${JSON.stringify(record)}\n    FAKE_AGENT_PLAN: ${JSON.stringify(JSON.stringify(plan))}\n${extra}`;
    const write = (id: string, front: string, body: string) => writeFileSync(join(personas, `${id}.md`), `---\nid: ${id}\nname: ${id}\n${front}---\n${body}\n`);
    write("planner", agent("claude", "  role: planner\n"), "You plan. [fake:plan]");
    write("implementer", `${agent("claude", "  workspace:\n    kind: worktree\n    repo: ../my-app\n    base: main\n    keep: on-failure\n")}concurrency: 2\n`, "You implement.");
    write("reviewer", agent("codex"), "You review.");
    const db = join(dir.path, "team.db");
    expect((await roster(["init", "--db", db, "--personas", personas])).code).toBe(0);
    // Names carry the database's identity (src/workspace/owner.ts).
    const owner = await openStore({ path: db }).then(async (s) => [(await s.maintenance.identity()).id, await s.close()][0] as string);
    // A crash's leftover: a worktree of this database's whose attempt nothing runs. roster start prunes it.
    git(repo, "worktree", "add", "-q", "-b", `roster/${owner}/task-77-a1`, join(dir.path, "my-app.roster-worktrees", owner, "task-77-a1"), "main");

    expect((await roster(["add", "--db", db, "--persona", "planner", "--title", "Build the feature"])).code).toBe(0);
    const started = await roster(["start", "--db", db, "--personas", personas, "--exit-when-idle", "--no-metrics", "--log-level", "warn"]);
    expect(started.code, started.stderr).toBe(0);

    const store = await openStore({ path: db });
    try {
      const tasks = await store.tasks.list({});
      expect(tasks.map((t) => [t.id, t.persona, t.status, t.parentId])).toEqual([
        [1, "planner", "completed", null],
        [2, "implementer", "completed", 1],
        [3, "implementer", "completed", 1],
        [4, "reviewer", "completed", 1],
      ]);
      expect(tasks[3]!.dependsOn.sort()).toEqual([2, 3]);
    } finally {
      await store.close();
    }
    for (const id of [2, 3]) expect(git(repo, "diff", "--name-only", `main..roster/${owner}/task-${id}-a1`)).toBe(`task-${id}.txt`);
    // keep: on-failure, and both succeeded; the leftover was pruned at start: only the main working tree is left.
    expect(git(repo, "worktree", "list", "--porcelain").split("\n").filter((l) => l.startsWith("worktree "))).toEqual([`worktree ${repo}`]);
    const review = readRecord(record).find((r) => (r.prompt as string | undefined)?.includes("# Task 4: Review"));
    expect(review!.prompt).toContain("### Task 2: Part A (implementer, completed)");
    expect(review!.prompt).toContain(`(Its work is on branch \`roster/${owner}/task-3-a1\`.)`);
  });
});
