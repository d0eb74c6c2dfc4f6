import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, realpath, rm, unlink } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { withRepoLock } from "../../workspace/lock.js";
import { gitIn, must, saveBranchHead, savedOn, saveWork, wipRef, WIP_REF_PREFIX } from "../../workspace/wip.js";
import { ownerSegment } from "../../workspace/owner.js";
import { branchName, repoInfo, worktreeName, worktreesDir, type OwnedWorkspace, type Worktree } from "../../workspace/worktrees.js";
import type { AgentDialect } from "./profiles.js";

/**
 * Continuing where a failed attempt stopped (issue 15).
 *
 * Its work: when an attempt with a worktree fails, everything in the worktree
 * (untracked files included, ignored ones not) is saved as a commit on the ref
 * `refs/roster/wip/<task>/<attempt>`, whose parent is the attempt's branch head;
 * the worktree itself is kept or removed as configured. The next attempt's new
 * branch starts at that parent (the earlier commits) and the saved changes are put
 * back in its worktree, uncommitted. A later success drops the task's wip refs.
 *
 * Its conversation: the failed attempt's session id travels in its error's
 * `details.sessionId` (the store hands it to the next claim as `task.previous`),
 * and the next attempt resumes it where the CLI can:
 * - claude: `--resume <id>`; Claude Code looks sessions up under the current
 *   folder's project (`~/.claude/projects/<cwd with every non-alphanumeric as ->`),
 *   and the new attempt runs in a new worktree, so the transcript is copied there;
 * - codex: `codex exec … resume <id>` (after exec's options); sessions are found by
 *   id wherever they ran;
 * - gemini: `--session-file <file>` (its `--resume` takes only "latest" or an index
 *   of the current folder's project, which a new worktree does not have).
 * With `home: fresh`, a failed attempt that will run again keeps its home (named
 * in `details.home`) for the next one, which removes it when it ends.
 */

export { WIP_REF_PREFIX, saveWork, wipRef, type SavedWork } from "../../workspace/wip.js";

/**
 * Before an attempt's worktree is made: a run of this same attempt number that was
 * released uncounted (a provider limit) or interrupted (a crash) left its branch and
 * maybe its folder. Its work is saved on the attempt's wip ref, then both are removed,
 * so the new worktree can take the name and continue from that work: from its folder
 * when it is still there (an earlier save of exactly that folder stays as it was);
 * else the wip ref stays when it was saved on the branch's head; else (no
 * save, or commits made after it) the head itself is saved, so the rerun starts on
 * every commit of the branch.
 */
export async function clearReleasedRun(config: OwnedWorkspace, taskId: number, attempt: number): Promise<boolean> {
  const repo = await repoInfo(config.repo);
  const owner = config.owner ?? "";
  const branch = branchName(config.branchPrefix, taskId, attempt, owner);
  const head = await gitIn(repo.root, ["rev-parse", "--verify", "--quiet", `refs/heads/${branch}`]);
  if (head.code !== 0) return false;
  const dir = worktreesDir(repo, config);
  const path = join(existsSync(dir) ? await realpath(dir) : dir, worktreeName(taskId, attempt, owner));
  const ref = wipRef(taskId, attempt, owner);
  const headCommit = head.stdout.trim();
  // A folder git cannot read (a crash during `worktree add`) has nothing to save.
  const fromFolder = await saveWork({ path, taskId, attempt, owner }, await savedSession(repo.root, ref), { keepSame: true }).catch(() => null);
  if (fromFolder === null && (await savedOn(repo.root, ref)) !== headCommit) {
    await saveBranchHead(repo.root, { taskId, attempt, owner, head: headCommit });
  }
  await withRepoLock(repo.gitCommonDir, async () => {
    if (existsSync(path)) {
      const removed = await gitIn(repo.root, ["worktree", "remove", "--force", "--force", path]);
      if (removed.code !== 0) await rm(path, { recursive: true, force: true });
    }
    await gitIn(repo.root, ["worktree", "prune"]);
    await must(repo.root, ["branch", "-D", branch]);
  });
  return true;
}

/** The session an earlier save of this ref named, kept when the save is made again. */
async function savedSession(repoRoot: string, ref: string): Promise<string | null> {
  const body = await gitIn(repoRoot, ["log", "-1", "--format=%B", ref, "--"]);
  return body.code === 0 ? (/^roster-session: (\S+)$/m.exec(body.stdout)?.[1] ?? null) : null;
}

export interface RestoredWork {
  ref: string;
  /** The attempt whose work it is. */
  attempt: number;
  /** Files the saved changes touch (restored uncommitted). */
  files: string[];
}

/**
 * Puts the task's latest saved work into a new worktree: the newest wip ref (by when it
 * was saved, then by attempt), which is the last failed run's, be it an earlier attempt,
 * a released run of this attempt number, or the last attempt before a `roster retry`
 * restarted the count. Its branch moves to that attempt's last commit, and the
 * uncommitted changes come back uncommitted. Null when there is none.
 */
export async function restoreWork(worktree: Worktree): Promise<RestoredWork | null> {
  const listed = await must(worktree.path, ["for-each-ref", "--format=%(refname) %(objectname) %(committerdate:unix)", `${WIP_REF_PREFIX}/${ownerSegment(worktree.owner)}${worktree.taskId}/`]);
  const saved = listed
    .split("\n")
    .map((line) => /\/(\d+) ([0-9a-f]+) (\d+)$/.exec(line.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ attempt: Number(m[1]), commit: m[2]!, at: Number(m[3]) }))
    .sort((a, b) => b.at - a.at || b.attempt - a.attempt)[0];
  if (saved === undefined) return null;
  const parent = await must(worktree.path, ["rev-parse", `${saved.commit}^1`]);
  await must(worktree.path, ["reset", "-q", "--hard", parent]);
  const changed = await must(worktree.path, ["diff", "--name-status", "--no-renames", "-z", parent, saved.commit]);
  const fields = changed.split("\0").filter((f) => f !== "");
  const files: string[] = [];
  const deleted: string[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    files.push(fields[i + 1]!);
    if (fields[i] === "D") deleted.push(fields[i + 1]!);
  }
  if (files.length > deleted.length) {
    await must(worktree.path, ["checkout", saved.commit, "--", "."]);
    await must(worktree.path, ["reset", "-q"]);
  }
  for (const file of deleted) await unlink(join(worktree.path, file)).catch(() => undefined);
  return { ref: wipRef(worktree.taskId, saved.attempt, worktree.owner), attempt: saved.attempt, files };
}

/** After a success: the task's saved work is in its branch now; its wip refs go. */
export async function dropWork(repoRoot: string, taskId: number, owner = ""): Promise<void> {
  const listed = await must(repoRoot, ["for-each-ref", "--format=%(refname)", `${WIP_REF_PREFIX}/${ownerSegment(owner)}${taskId}/`]);
  for (const ref of listed.split("\n").filter((r) => r.trim() !== "")) await gitIn(repoRoot, ["update-ref", "-d", ref.trim()]);
}

/** How the CLI continues a session: flags among its options, and arguments after them (codex's `resume <id>`). */
export interface SessionResume {
  sessionId: string;
  args: string[];
  tail: string[];
}

/**
 * The flags that resume `sessionId` for this CLI running in `cwd` with these homes,
 * or null when the session's transcript cannot be found there (another machine,
 * a home that is gone): the attempt then starts a new conversation.
 */
export async function resumeSession(input: { dialect: AgentDialect | null; sessionId: string; env: NodeJS.ProcessEnv; cwd: string }): Promise<SessionResume | null> {
  const { dialect, sessionId, env } = input;
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(sessionId)) return null;
  const home = env.HOME ?? homedir();
  if (dialect === "claude") {
    const projects = join(env.CLAUDE_CONFIG_DIR ?? join(home, ".claude"), "projects");
    const file = await findFile(projects, 1, (name) => name === `${sessionId}.jsonl`);
    if (file === null) return null;
    const project = (await realpath(input.cwd)).replace(/[^a-zA-Z0-9]/g, "-");
    // Longer names are cut and hashed by Claude Code; not worth imitating: start anew.
    if (project.length > 200) return null;
    const target = join(projects, project, `${sessionId}.jsonl`);
    if (target !== file) {
      await mkdir(dirname(target), { recursive: true });
      await copyFile(file, target);
    }
    return { sessionId, args: ["--resume", sessionId], tail: [] };
  }
  if (dialect === "codex") {
    const sessions = join(env.CODEX_HOME ?? join(home, ".codex"), "sessions");
    const file = await findFile(sessions, 3, (name) => name.endsWith(`${sessionId}.jsonl`));
    return file === null ? null : { sessionId, args: [], tail: ["resume", sessionId] };
  }
  if (dialect === "gemini") {
    const tmp = join(env.GEMINI_CLI_HOME ?? home, ".gemini", "tmp");
    const candidates: string[] = [];
    await findFile(tmp, 2, (name, path) => {
      if (basename(dirname(path)) === "chats" && name.startsWith("session-") && name.includes(sessionId.slice(0, 8))) candidates.push(path);
      return false;
    });
    for (const file of candidates) {
      if ((await readFile(file, "utf8")).includes(sessionId)) return { sessionId, args: ["--session-file", file], tail: [] };
    }
    return null;
  }
  return null;
}

/** The first file under `root` (at most `depth` folders down) that `match` accepts; null when none. */
async function findFile(root: string, depth: number, match: (name: string, path: string) => boolean): Promise<string | null> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch {
    // No such folder: nothing was ever saved there.
    return null;
  }
  for (const entry of entries) {
    const path = join(root, entry.name);
    if (entry.isFile() && match(entry.name, path)) return path;
    if (entry.isDirectory() && depth > 0) {
      const found = await findFile(path, depth - 1, match);
      if (found !== null) return found;
    }
  }
  return null;
}

/** A fresh home an earlier attempt kept for this one: only roster's own, under the temp folder. */
export function reusableHome(path: unknown): string | null {
  if (typeof path !== "string" || dirname(path) !== tmpdir() || !basename(path).startsWith("roster-home-")) return null;
  return existsSync(path) ? path : null;
}
