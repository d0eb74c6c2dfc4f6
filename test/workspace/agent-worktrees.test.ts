import { cpSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runAgent } from "../../src/adapters/agent/index.js";
import { RosterError } from "../../src/errors.js";
import { agentConfig, git, makeContext, makeRepo, makeTask, readRecord, tempDir } from "../agent/helpers.js";

let template: { path: string; cleanup: () => void };
let dir: { path: string; cleanup: () => void };
let repo: string;
let record: string;

// One real repository made with git, copied per test (a copy is a whole repository; it saves the git calls).
beforeAll(() => {
  template = tempDir("worktrees-template");
  makeRepo(template.path);
});
afterAll(() => template.cleanup());

beforeEach(() => {
  dir = tempDir("worktrees");
  repo = join(dir.path, "repo");
  cpSync(join(template.path, "repo"), repo, { recursive: true });
  record = join(dir.path, "record.jsonl");
});
afterEach(() => dir.cleanup());

const worktreesDir = () => join(dir.path, "repo.roster-worktrees");
const workspace = (keep: "always" | "on-failure" | "never") => ({ kind: "worktree", repo, base: "main", keep });
const persona = (keep: "always" | "on-failure" | "never") => agentConfig({ env: { FAKE_AGENT_RECORD: record }, workspace: workspace(keep) });
const branches = () => git(repo, "branch", "--format=%(refname:short)").split("\n").sort();
const registered = () =>
  git(repo, "worktree", "list", "--porcelain")
    .split("\n")
    .filter((l) => l.startsWith("worktree "))
    .map((l) => l.slice("worktree ".length));

async function failureOf(promise: Promise<unknown>): Promise<RosterError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof RosterError) return error;
    throw error;
  }
  throw new Error("expected the attempt to fail");
}

describe("agent attempts in git worktrees", () => {
  it("gives three concurrent tasks their own worktree and branch, and their commits land on their branches", async () => {
    const config = persona("always");
    const outputs = await Promise.all(
      [1, 2, 3].map((id) => runAgent(makeTask({ id, title: `Part ${id}`, description: "[fake:commit]" }), makeContext(config))),
    );
    const runs = readRecord(record);
    const cwds = runs.map((r) => r.cwd as string).sort();
    expect(cwds).toEqual([1, 2, 3].map((id) => join(worktreesDir(), `task-${id}-a1`)));
    expect(branches()).toEqual(["main", "roster/task-1-a1", "roster/task-2-a1", "roster/task-3-a1"]);
    for (const id of [1, 2, 3]) {
      expect(git(repo, "log", "--format=%s", `main..roster/task-${id}-a1`)).toBe(`fake agent: task ${id}`);
      expect(git(repo, "diff", "--name-only", `main..roster/task-${id}-a1`)).toBe(`task-${id}.txt`);
    }
    expect(git(repo, "rev-list", "--count", "main")).toBe("1");
    expect(existsSync(join(repo, "task-1.txt"))).toBe(false);
    expect(outputs.map((o) => (o.result as { workspace: { branch: string; commits: number; kept: boolean } }).workspace)).toEqual(
      [1, 2, 3].map((id) => expect.objectContaining({ branch: `roster/task-${id}-a1`, commits: 1, kept: true, path: join(worktreesDir(), `task-${id}-a1`) })),
    );
  });

  it("tells the agent in its prompt which worktree and branch it works in", async () => {
    await runAgent(makeTask({ id: 5 }), makeContext(persona("never")));
    const [run] = readRecord(record);
    expect(run!.prompt).toContain("on branch `roster/task-5-a1` (started from `main`)");
    expect(run!.env).toMatchObject({ ROSTER_BRANCH: "roster/task-5-a1", ROSTER_WORKTREE: join(worktreesDir(), "task-5-a1") });
  });

  it("removes the worktree of a successful attempt when keep is on-failure, keeping its branch and commits", async () => {
    const output = await runAgent(makeTask({ id: 1, description: "[fake:commit]" }), makeContext(persona("on-failure")));
    expect(existsSync(join(worktreesDir(), "task-1-a1"))).toBe(false);
    expect(registered()).toEqual([repo]);
    expect(branches()).toContain("roster/task-1-a1");
    expect(output.result).toMatchObject({ workspace: { kept: false, commits: 1 } });
  });

  it("keeps the worktree of a failed attempt when keep is on-failure", async () => {
    const error = await failureOf(runAgent(makeTask({ id: 1, description: "[fake:exit=1]" }), makeContext(persona("on-failure"))));
    expect(existsSync(join(worktreesDir(), "task-1-a1"))).toBe(true);
    expect(error.details?.workspace).toMatchObject({ kept: true, branch: "roster/task-1-a1", path: join(worktreesDir(), "task-1-a1") });
  });

  it("keeps the worktree of a successful attempt when keep is always", async () => {
    await runAgent(makeTask({ id: 1 }), makeContext(persona("always")));
    expect(existsSync(join(worktreesDir(), "task-1-a1"))).toBe(true);
    expect(registered()).toContain(join(worktreesDir(), "task-1-a1"));
  });

  it("removes the worktree of a failed attempt when keep is never, and deletes its branch when it has no commit", async () => {
    await failureOf(runAgent(makeTask({ id: 1, description: "[fake:exit=1]" }), makeContext(persona("never"))));
    expect(existsSync(join(worktreesDir(), "task-1-a1"))).toBe(false);
    expect(registered()).toEqual([repo]);
    expect(branches()).toEqual(["main"]);
  });

  it("reports changes the agent did not commit", async () => {
    const output = await runAgent(makeTask({ id: 1, description: "[fake:dirty]" }), makeContext(persona("never")));
    expect(output.result).toMatchObject({ workspace: { dirty: true, kept: false, commits: 0 } });
  });

  it("commits what a successful agent left uncommitted when autoCommit is set, so removing the worktree loses nothing", async () => {
    const config = agentConfig({ workspace: { ...workspace("never"), autoCommit: true } });
    const output = await runAgent(makeTask({ id: 1, title: "Leave it dirty", description: "[fake:dirty]" }), makeContext(config));
    expect(output.result).toMatchObject({ workspace: { autoCommitted: true, dirty: false, commits: 1, kept: false } });
    expect(git(repo, "diff", "--name-only", "main..roster/task-1-a1")).toBe("dirty-1.txt");
    expect(git(repo, "log", "-1", "--format=%s", "roster/task-1-a1")).toBe("Leave it dirty");
  });

  it("gives each retry of a task a new worktree and branch", async () => {
    const config = persona("always");
    await failureOf(runAgent(makeTask({ id: 1, attempt: 1, description: "[fake:exit=1]" }), makeContext(config)));
    await runAgent(makeTask({ id: 1, attempt: 2, description: "[fake:commit]" }), makeContext(config));
    expect(branches()).toEqual(["main", "roster/task-1-a1", "roster/task-1-a2"]);
    expect(git(repo, "rev-list", "--count", "main..roster/task-1-a2")).toBe("1");
  });

  it("fails non-retryable, naming the field, when the base does not exist", async () => {
    const config = agentConfig({ workspace: { kind: "worktree", repo, base: "no-such-branch" } });
    const error = await failureOf(runAgent(makeTask(), makeContext(config)));
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/workspace\.base: "no-such-branch"/);
  });

  it("fails non-retryable when the repository is not a git repository", async () => {
    const notRepo = join(dir.path, "plain");
    mkdirSync(notRepo);
    const config = agentConfig({ workspace: { kind: "worktree", repo: notRepo } });
    const error = await failureOf(runAgent(makeTask(), makeContext(config)));
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/not inside a git repository/);
  });

});
