import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ownerSegment } from "./owner.js";

/**
 * The saved work of an attempt that did not finish (docs/agent-clis.md, "Continuing"):
 * a commit of its whole worktree folder (untracked files included, ignored ones not)
 * on `refs/roster/wip/<task>/<attempt>`, whose parent is the attempt's branch head.
 * Made when an attempt fails (src/adapters/agent), when the prune at start removes the
 * folder of an attempt a crash interrupted (./worktrees.ts), and before a rerun of the
 * same attempt number takes its branch name (src/adapters/agent/resume.ts).
 */
export const WIP_REF_PREFIX = "refs/roster/wip";

/** `refs/roster/wip/<owner>/<task>/<attempt>` (./owner.ts). */
export function wipRef(taskId: number, attempt: number, owner = ""): string {
  return `${WIP_REF_PREFIX}/${ownerSegment(owner)}${taskId}/${attempt}`;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** git with its own environment (a private index, a fixed identity); never a shell, never a prompt. */
export function gitIn(cwd: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      "git",
      args,
      { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: "0", LC_ALL: "C", ...env }, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }),
    );
  });
}

export async function must(cwd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await gitIn(cwd, args, env);
  if (r.code !== 0) throw new Error(`git ${args.join(" ")} (in ${cwd}) failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

const IDENTITY = { GIT_AUTHOR_NAME: "roster", GIT_AUTHOR_EMAIL: "roster@localhost", GIT_COMMITTER_NAME: "roster", GIT_COMMITTER_EMAIL: "roster@localhost" };

function message(taskId: number, attempt: number, sessionId: string | null): string {
  return `roster: work in progress of task ${taskId}, attempt ${attempt}${sessionId === null ? "" : `\n\nroster-session: ${sessionId}`}`;
}

export interface SavedWork {
  ref: string;
  commit: string;
  /** The attempt left changes it had not committed. */
  dirty: boolean;
}

/**
 * Saves what an attempt left in its worktree folder: a commit of the whole folder on
 * its wip ref, made through a private index so the worktree's own index and files are
 * untouched. Null when the folder is gone. `keepSame`: when the ref already holds
 * exactly this (same head, same files), it is left as it is, keeping its date (the
 * newest save of a task is the one continued).
 */
export async function saveWork(
  at: { path: string; taskId: number; attempt: number; owner?: string },
  sessionId: string | null,
  options: { keepSame?: boolean } = {},
): Promise<SavedWork | null> {
  if (!existsSync(at.path)) return null;
  const head = await must(at.path, ["rev-parse", "HEAD"]);
  const index = join(tmpdir(), `roster-wip-index-${randomBytes(6).toString("hex")}`);
  try {
    const env = { GIT_INDEX_FILE: index };
    await must(at.path, ["read-tree", "HEAD"], env);
    await must(at.path, ["add", "-A", "."], env);
    const tree = await must(at.path, ["write-tree"], env);
    const ref = wipRef(at.taskId, at.attempt, at.owner);
    const headTree = await must(at.path, ["rev-parse", `${head}^{tree}`]);
    if (options.keepSame) {
      const same = await gitIn(at.path, ["rev-parse", "--quiet", `${ref}^1`, `${ref}^{tree}`, "--"]);
      const [parent, savedTree] = same.stdout.trim().split("\n");
      if (same.code === 0 && parent === head && savedTree === tree) return { ref, commit: await must(at.path, ["rev-parse", ref]), dirty: headTree !== tree };
    }
    const commit = await must(at.path, ["commit-tree", tree, "-p", head, "-m", message(at.taskId, at.attempt, sessionId)], IDENTITY);
    await must(at.path, ["update-ref", ref, commit]);
    return { ref, commit, dirty: headTree !== tree };
  } finally {
    await rm(index, { force: true });
  }
}

/**
 * Saves a branch whose folder is gone: a commit with the head's own tree on top of
 * the head (nothing uncommitted to carry), so what continues from it starts at the
 * head, every commit of the branch included.
 */
export async function saveBranchHead(repoRoot: string, at: { taskId: number; attempt: number; owner: string; head: string }): Promise<SavedWork> {
  const commit = await must(repoRoot, ["commit-tree", `${at.head}^{tree}`, "-p", at.head, "-m", message(at.taskId, at.attempt, null)], IDENTITY);
  const ref = wipRef(at.taskId, at.attempt, at.owner);
  await must(repoRoot, ["update-ref", ref, commit]);
  return { ref, commit, dirty: false };
}

/** The branch head a saved work continues from (its commit's parent), or null when there is no such ref. */
export async function savedOn(repoRoot: string, ref: string): Promise<string | null> {
  const parent = await gitIn(repoRoot, ["rev-parse", "--verify", "--quiet", `${ref}^1`]);
  return parent.code === 0 ? parent.stdout.trim() : null;
}
