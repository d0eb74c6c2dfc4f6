import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runAgent } from "../../src/adapters/agent/index.js";
import { workspaceSchema } from "../../src/workspace/config.js";
import { createWorktree, pruneStaleWorktrees } from "../../src/workspace/worktrees.js";
import { agentConfig, git, isAncestor, makeContext, makeTask, useRepoCopies } from "../agent/helpers.js";

/**
 * A supervisor killed while an agent worked in its worktree, restarted after the lease
 * expired: the prune at start removes the attempt's folder (nothing runs it), and the task
 * runs again under the same attempt number. The agent's commits and its uncommitted files
 * must all reach the new run's branch, on top of the base as configured.
 */
const copies = useRepoCopies("crash", (made) => {
  // A base with two commits, so a branch forked from base^1 shows.
  writeFileSync(join(made, "second.txt"), "the base's last commit\n");
  git(made, "add", "second.txt");
  git(made, "commit", "-q", "-m", "second");
});

const workspace = () => ({ kind: "worktree", repo: copies.repo, base: "main", keep: "on-failure", autoCommit: true }) as const;

/** What the killed attempt left: its worktree, maybe a commit, maybe uncommitted files; then the prune of the restart. */
async function crashedAttempt(work: { commit?: boolean; dirty?: boolean }) {
  const config = workspaceSchema.parse(workspace());
  const wt = await createWorktree(config, 1, 1);
  let commit: string | null = null;
  if (work.commit) {
    writeFileSync(join(wt.path, "work.txt"), "committed by the agent\n");
    git(wt.path, "add", "work.txt");
    git(wt.path, "commit", "-q", "-m", "agent's commit");
    commit = git(wt.path, "rev-parse", "HEAD");
  }
  if (work.dirty) writeFileSync(join(wt.path, "notes.txt"), "not committed yet\n");
  const pruned = await pruneStaleWorktrees({ config, isRunning: () => false });
  expect(pruned.removed).toEqual([wt.path]);
  expect(existsSync(wt.path)).toBe(false);
  return { wt, commit };
}

describe("a restart after a crash whose lease expired", () => {
  it("saves the crashed attempt's uncommitted files before the prune removes its folder", async () => {
    const { wt } = await crashedAttempt({ commit: true, dirty: true });
    const wip = git(copies.repo, "for-each-ref", "--format=%(refname)", "refs/roster/wip/");
    expect(wip).not.toBe("");
    expect(git(copies.repo, "show", `${wip}:notes.txt`)).toBe("not committed yet");
    expect(git(copies.repo, "rev-parse", `${wip}^1`)).toBe(git(copies.repo, "rev-parse", wt.branch));
  });

  it("keeps the agent's commit on the new run's branch and carries its uncommitted file over", async () => {
    const { commit } = await crashedAttempt({ commit: true, dirty: true });
    const output = await runAgent(makeTask({ id: 1, attempt: 1, description: "done" }), makeContext(agentConfig({ workspace: workspace() })));
    expect(isAncestor(copies.repo, commit!, "roster/task-1-a1")).toBe(true);
    expect(isAncestor(copies.repo, "main", "roster/task-1-a1")).toBe(true);
    // The agent's commit, then roster's commit of what it left (notes.txt, carried over).
    expect(git(copies.repo, "log", "--format=%s", "main..roster/task-1-a1").split("\n")).toEqual([makeTask().title, "agent's commit"]);
    expect(git(copies.repo, "diff", "--name-only", "roster/task-1-a1^", "roster/task-1-a1")).toBe("notes.txt");
    expect(output.result).toMatchObject({ resumed: { files: ["notes.txt"] }, workspace: { commits: 2 } });
  });

  it("starts the new run from the base as configured when the crashed attempt did nothing", async () => {
    await crashedAttempt({});
    const output = await runAgent(makeTask({ id: 1, attempt: 1, description: "[fake:dirty]" }), makeContext(agentConfig({ workspace: workspace() })));
    expect(git(copies.repo, "rev-parse", "roster/task-1-a1^")).toBe(git(copies.repo, "rev-parse", "main"));
    expect(git(copies.repo, "diff", "--name-only", "main", "roster/task-1-a1")).toBe("dirty-1.txt");
    expect(output.result).toMatchObject({ workspace: { commits: 1 } });
  });

  it("keeps a commit made after the saved work it continued from", async () => {
    // The rerun restored the crashed attempt's work and failed (its work saved, its folder kept);
    // then someone committed in the kept folder. The next run must build on that commit.
    await crashedAttempt({ dirty: true });
    await expect(runAgent(makeTask({ id: 1, attempt: 1, description: "[fake:exit=1]" }), makeContext(agentConfig({ workspace: workspace() })))).rejects.toThrow();
    const rerun = join(copies.dir, "repo.roster-worktrees", "task-1-a1");
    git(rerun, "add", "-A");
    git(rerun, "commit", "-q", "-m", "committed after the restore");
    const late = git(rerun, "rev-parse", "HEAD");
    await runAgent(makeTask({ id: 1, attempt: 1, description: "done" }), makeContext(agentConfig({ workspace: workspace() })));
    expect(isAncestor(copies.repo, late, "roster/task-1-a1")).toBe(true);
    expect(git(copies.repo, "show", "roster/task-1-a1:notes.txt")).toBe("not committed yet");
  });
});
