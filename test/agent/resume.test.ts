import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clearReleasedRun, dropWork, restoreWork, saveWork } from "../../src/adapters/agent/resume.js";
import { workspaceSchema } from "../../src/workspace/config.js";
import { createWorktree, finishWorktree } from "../../src/workspace/worktrees.js";
import { git, makeRepo, tempDir } from "./helpers.js";

/**
 * A failed attempt's worktree saved to refs/roster/wip/<task>/<attempt> and put back in the
 * next attempt's (src/adapters/agent/resume.ts), on a real repository.
 */
let dir: { path: string; cleanup: () => void };
let repo: string;
beforeEach(() => {
  dir = tempDir("resume");
  repo = makeRepo(dir.path, "app");
  writeFileSync(join(repo, "old.txt"), "to be deleted\n");
  git(repo, "add", "old.txt");
  git(repo, "commit", "-q", "-m", "old");
});
afterEach(() => dir.cleanup());

const config = () => workspaceSchema.parse({ kind: "worktree", repo, base: "main", keep: "on-failure" });

/** Attempt `attempt` of task 7 commits one file, then leaves a new file, a changed file and a deleted one, and fails. */
async function failedAttempt(attempt: number) {
  const wt = await createWorktree(config(), 7, attempt);
  writeFileSync(join(wt.path, "committed.txt"), "committed by the agent\n");
  git(wt.path, "add", "committed.txt");
  git(wt.path, "commit", "-q", "-m", "agent commit");
  writeFileSync(join(wt.path, "new.txt"), "new, untracked\n");
  writeFileSync(join(wt.path, "README.md"), "# changed, unstaged\n");
  rmSync(join(wt.path, "old.txt"));
  const saved = await saveWork(wt, "session-1");
  await finishWorktree(wt, { keep: "on-failure", succeeded: false });
  return { wt, saved };
}

describe("saved work of a failed attempt", () => {
  it("is a commit of the whole folder on the wip ref, the worktree's own index and files untouched", async () => {
    const { wt, saved } = await failedAttempt(1);
    expect(saved).toMatchObject({ ref: "refs/roster/wip/7/1", dirty: true });
    expect(git(repo, "show", "refs/roster/wip/7/1:new.txt")).toBe("new, untracked");
    expect(git(repo, "log", "-1", "--format=%B", "refs/roster/wip/7/1")).toContain("roster-session: session-1");
    expect(git(repo, "rev-parse", "refs/roster/wip/7/1^1")).toBe(git(repo, "rev-parse", wt.branch));
    // The worktree still shows the agent's changes as it left them, nothing staged.
    expect(git(wt.path, "status", "--porcelain")).toBe("M README.md\n D old.txt\n?? new.txt"); // git() trims the leading space of " M"
  });

  it("comes back in the next attempt's worktree: its commits on the new branch, its changes uncommitted, its deletion too; a success drops it", async () => {
    await failedAttempt(1);
    const next = await createWorktree(config(), 7, 2);
    const restored = await restoreWork(next);
    expect(restored).toEqual({ ref: "refs/roster/wip/7/1", attempt: 1, files: ["README.md", "new.txt", "old.txt"] });
    expect(git(next.path, "log", "-1", "--format=%s")).toBe("agent commit");
    expect(readFileSync(join(next.path, "new.txt"), "utf8")).toBe("new, untracked\n");
    expect(existsSync(join(next.path, "old.txt"))).toBe(false);
    expect(git(next.path, "status", "--porcelain")).toBe("M README.md\n D old.txt\n?? new.txt"); // git() trims the leading space of " M"
    await dropWork(repo, 7);
    expect(git(repo, "for-each-ref", "refs/roster/wip/")).toBe("");
  });

  it("is found for a run of the same attempt number after a release: its branch and kept folder are cleared so the worktree can be made again", async () => {
    await failedAttempt(1);
    expect(await clearReleasedRun(config(), 7, 1)).toBe(true);
    expect(git(repo, "branch", "--list", "roster/task-7-a1")).toBe("");
    const again = await createWorktree(config(), 7, 1);
    const restored = await restoreWork(again);
    expect(restored?.files).toEqual(["README.md", "new.txt", "old.txt"]);
    expect(git(again.path, "log", "-1", "--format=%s")).toBe("agent commit");
    // Nothing to clear when the attempt number never ran.
    expect(await clearReleasedRun(config(), 7, 2)).toBe(false);
  });

  it("after roster retry restarted the count, the new attempt 1 gets the last failed attempt's work, not attempt 1's", async () => {
    await failedAttempt(1);
    const second = await createWorktree(config(), 7, 2);
    await restoreWork(second);
    writeFileSync(join(second.path, "second.txt"), "attempt 2 got further\n");
    await saveWork(second, "session-2");
    await finishWorktree(second, { keep: "on-failure", succeeded: false });
    const first = git(repo, "rev-parse", "refs/roster/wip/7/1");
    expect(await clearReleasedRun(config(), 7, 1)).toBe(true);
    // Attempt 1's kept folder is as it was saved: its save stays, older than attempt 2's.
    expect(git(repo, "rev-parse", "refs/roster/wip/7/1")).toBe(first);
    const again = await createWorktree(config(), 7, 1);
    const restored = await restoreWork(again);
    expect(restored?.ref).toBe("refs/roster/wip/7/2");
    expect(readFileSync(join(again.path, "second.txt"), "utf8")).toBe("attempt 2 got further\n");
    expect(readFileSync(join(again.path, "new.txt"), "utf8")).toBe("new, untracked\n");
  });
});
