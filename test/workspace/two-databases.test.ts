import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runAgent } from "../../src/adapters/agent/index.js";
import type { DatabaseIdentity } from "../../src/store/types.js";
import { agentConfig, git, isAncestor, makeContext, makeTask, useRepoCopies } from "../agent/helpers.js";

/**
 * Two roster databases on one repository (a second database, or a new one after the file
 * was deleted), each with its own task 1: neither touches the other's branch, worktree or
 * saved work (src/workspace/owner.ts).
 */
const copies = useRepoCopies("two-db");

const A: DatabaseIdentity = { id: "raaaa1111", legacyTaskIdsUpTo: 0 };
const B: DatabaseIdentity = { id: "rbbbb2222", legacyTaskIdsUpTo: 0 };
const workspace = () => ({ kind: "worktree", repo: copies.repo, base: "main", keep: "on-failure", autoCommit: true });

describe("two databases on one repository, each with a task 1", () => {
  it("keeps each database's branch and commits apart", async () => {
    await runAgent(makeTask({ id: 1, title: "A's task", description: "[fake:commit]" }), makeContext(agentConfig({ workspace: workspace() })), { database: A });
    const aHead = git(copies.repo, "rev-parse", `roster/${A.id}/task-1-a1`);
    await runAgent(makeTask({ id: 1, title: "B's task", description: "[fake:dirty]" }), makeContext(agentConfig({ workspace: workspace() })), { database: B });
    expect(git(copies.repo, "rev-parse", `roster/${A.id}/task-1-a1`)).toBe(aHead);
    expect(isAncestor(copies.repo, aHead, `roster/${B.id}/task-1-a1`)).toBe(false);
    expect(git(copies.repo, "diff", "--name-only", "main", `roster/${B.id}/task-1-a1`)).toBe("dirty-1.txt");
    expect(git(copies.repo, "log", "-1", "--format=%s", `roster/${A.id}/task-1-a1`)).toBe("fake agent: task 1");
  });

  it("leaves another database's running worktree and saved work alone", async () => {
    // A's attempt 1 failed: its worktree is kept and its work saved.
    await expect(
      runAgent(makeTask({ id: 1, description: "[fake:dirty] [fake:exit=1]" }), makeContext(agentConfig({ workspace: workspace() })), { database: A }),
    ).rejects.toThrow();
    const aFolder = join(copies.dir, "repo.roster-worktrees", A.id, "task-1-a1");
    expect(existsSync(aFolder)).toBe(true);
    writeFileSync(join(aFolder, "still-working.txt"), "A's agent is still here\n");
    const aWip = git(copies.repo, "for-each-ref", "--format=%(refname)", "refs/roster/wip/");
    expect(aWip).toBe(`refs/roster/wip/${A.id}/1/1`);
    // B's task 1, attempt 1: its own branch and folder, nothing of A's restored, A's untouched.
    const output = await runAgent(makeTask({ id: 1, description: "done" }), makeContext(agentConfig({ workspace: workspace() })), { database: B });
    expect(output.result).not.toHaveProperty("resumed");
    expect(existsSync(join(aFolder, "still-working.txt"))).toBe(true);
    expect(git(copies.repo, "for-each-ref", "--format=%(refname)", "refs/roster/wip/")).toBe(aWip);
    expect(git(copies.repo, "branch", "--list", `roster/${A.id}/task-1-a1`)).not.toBe("");
  });
});
