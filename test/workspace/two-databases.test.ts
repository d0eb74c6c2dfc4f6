import { cpSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runAgent } from "../../src/adapters/agent/index.js";
import type { DatabaseIdentity } from "../../src/store/types.js";
import { agentConfig, git, makeContext, makeRepo, makeTask, tempDir } from "../agent/helpers.js";

/**
 * Two roster databases on one repository (a second database, or a new one after the file
 * was deleted), each with its own task 1: neither touches the other's branch, worktree or
 * saved work (src/workspace/owner.ts).
 */
let template: { path: string; cleanup: () => void };
let dir: { path: string; cleanup: () => void };
let repo: string;
beforeAll(() => {
  template = tempDir("two-db-template");
  makeRepo(template.path);
});
afterAll(() => template.cleanup());
beforeEach(() => {
  dir = tempDir("two-db");
  repo = join(dir.path, "repo");
  cpSync(join(template.path, "repo"), repo, { recursive: true });
});
afterEach(() => dir.cleanup());

const A: DatabaseIdentity = { id: "raaaa1111", legacyTaskIdsUpTo: 0 };
const B: DatabaseIdentity = { id: "rbbbb2222", legacyTaskIdsUpTo: 0 };
const workspace = () => ({ kind: "worktree", repo, base: "main", keep: "on-failure", autoCommit: true });
const isAncestor = (a: string, b: string) => {
  try {
    git(repo, "merge-base", "--is-ancestor", a, b);
    return true;
  } catch {
    return false;
  }
};

describe("two databases on one repository, each with a task 1", () => {
  it("keeps each database's branch and commits apart", async () => {
    await runAgent(makeTask({ id: 1, title: "A's task", description: "[fake:commit]" }), makeContext(agentConfig({ workspace: workspace() })), { database: A });
    const aHead = git(repo, "rev-parse", `roster/${A.id}/task-1-a1`);
    await runAgent(makeTask({ id: 1, title: "B's task", description: "[fake:dirty]" }), makeContext(agentConfig({ workspace: workspace() })), { database: B });
    expect(git(repo, "rev-parse", `roster/${A.id}/task-1-a1`)).toBe(aHead);
    expect(isAncestor(aHead, `roster/${B.id}/task-1-a1`)).toBe(false);
    expect(git(repo, "diff", "--name-only", "main", `roster/${B.id}/task-1-a1`)).toBe("dirty-1.txt");
    expect(git(repo, "log", "-1", "--format=%s", `roster/${A.id}/task-1-a1`)).toBe("fake agent: task 1");
  });

  it("leaves another database's running worktree and saved work alone", async () => {
    // A's attempt 1 failed: its worktree is kept and its work saved.
    await expect(
      runAgent(makeTask({ id: 1, description: "[fake:dirty] [fake:exit=1]" }), makeContext(agentConfig({ workspace: workspace() })), { database: A }),
    ).rejects.toThrow();
    const aFolder = join(dir.path, "repo.roster-worktrees", A.id, "task-1-a1");
    expect(existsSync(aFolder)).toBe(true);
    writeFileSync(join(aFolder, "still-working.txt"), "A's agent is still here\n");
    const aWip = git(repo, "for-each-ref", "--format=%(refname)", "refs/roster/wip/");
    expect(aWip).toBe(`refs/roster/wip/${A.id}/1/1`);
    // B's task 1, attempt 1: its own branch and folder, nothing of A's restored, A's untouched.
    const output = await runAgent(makeTask({ id: 1, description: "done" }), makeContext(agentConfig({ workspace: workspace() })), { database: B });
    expect(output.result).not.toHaveProperty("resumed");
    expect(existsSync(join(aFolder, "still-working.txt"))).toBe(true);
    expect(git(repo, "for-each-ref", "--format=%(refname)", "refs/roster/wip/")).toBe(aWip);
    expect(git(repo, "branch", "--list", `roster/${A.id}/task-1-a1`)).not.toBe("");
  });
});
