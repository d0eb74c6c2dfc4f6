import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, readdir, realpath, rm } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { RosterError } from "../errors.js";
import type { KeepMode, WorkspaceConfig } from "./config.js";
import { git } from "./git.js";
import { withRepoLock } from "./lock.js";
import { ownerSegment } from "./owner.js";
import { saveWork } from "./wip.js";

/**
 * One git worktree per task attempt, on branch `<prefix><owner>/task-<id>-a<attempt>`,
 * in a folder `<owner>/task-<id>-a<attempt>` under the worktrees folder, where the owner is
 * the identity of the database whose task it is (./owner.ts; absent for older tasks) (default
 * `<repo>.roster-worktrees` beside the repository, so the repository's own
 * `git status` never sees them). Every change to a repository's worktrees holds
 * that repository's lock (lock.ts).
 *
 * The branch outlives its worktree: removing a worktree keeps the commits the
 * agent made; a branch is deleted only when it holds no commit of its own.
 */
/** A workspace as one database uses it: `owner` names its git work (./owner.ts); "" or absent for names without one. */
export type OwnedWorkspace = WorkspaceConfig & { owner?: string };

export interface RepoInfo {
  /** The repository's main working tree (or the bare repository). */
  root: string;
  /** Its git common folder (`.git`), real path: the key of its lock. */
  gitCommonDir: string;
}

export interface Worktree {
  repo: RepoInfo;
  taskId: number;
  attempt: number;
  /** The database whose task it is (./owner.ts); "" for names without one. */
  owner: string;
  path: string;
  branch: string;
  /** The base as configured (branch, tag, commit) and the commit it named at creation. */
  base: string;
  baseCommit: string;
}

export interface WorktreeOutcome {
  branch: string;
  path: string;
  kept: boolean;
  /** The branch's last commit, or null when it could not be read. */
  head: string | null;
  /** Commits on the branch since its base. */
  commits: number;
  /** The agent left changes it did not commit (lost when the worktree is removed). */
  dirty: boolean;
  branchDeleted: boolean;
  /** roster committed what the agent left uncommitted (workspace.autoCommit). */
  autoCommitted: boolean;
}

const NAME = /^task-(\d+)-a(\d+)$/;

/** The folder's path under the worktrees folder, and the branch's after its prefix: `<owner>/task-<id>-a<attempt>`. */
export function worktreeName(taskId: number, attempt: number, owner = ""): string {
  return `${ownerSegment(owner)}task-${taskId}-a${attempt}`;
}

export function branchName(prefix: string, taskId: number, attempt: number, owner = ""): string {
  return `${prefix}${worktreeName(taskId, attempt, owner)}`;
}

/** The workspace config with `repo` (and `dir`) made absolute against the persona file's folder. */
export function resolveWorkspace(config: WorkspaceConfig, baseDir: string | null): WorkspaceConfig {
  const from = baseDir ?? process.cwd();
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(from, p));
  return { ...config, repo: abs(config.repo), ...(config.dir === undefined ? {} : { dir: abs(config.dir) }) };
}

export async function repoInfo(repo: string): Promise<RepoInfo> {
  if (!existsSync(repo)) {
    throw new RosterError("CONFIG_INVALID", `workspace.repo: ${repo} does not exist`, { retryable: false, details: { field: "workspace.repo", repo } });
  }
  const out = await git(["rev-parse", "--path-format=absolute", "--git-common-dir"], { cwd: repo }).catch((error: unknown) => {
    throw new RosterError("CONFIG_INVALID", `workspace.repo: ${repo} is not inside a git repository`, {
      cause: error,
      retryable: false,
      details: { field: "workspace.repo", repo },
    });
  });
  const gitCommonDir = await realpath(out.stdout.trim());
  const root = basename(gitCommonDir) === ".git" ? dirname(gitCommonDir) : gitCommonDir;
  return { root, gitCommonDir };
}

export function worktreesDir(repo: RepoInfo, config: Pick<WorkspaceConfig, "dir">): string {
  return config.dir ?? join(dirname(repo.root), `${basename(repo.root)}.roster-worktrees`);
}

/** Creates the worktree and branch of one attempt. Fails non-retryable when the base or the branch is wrong. */
export async function createWorktree(config: OwnedWorkspace, taskId: number, attempt: number): Promise<Worktree> {
  const owner = config.owner ?? "";
  const repo = await repoInfo(config.repo);
  const base = config.base;
  const resolved = await git(["rev-parse", "--verify", "--quiet", "--end-of-options", `${base}^{commit}`], { cwd: repo.root, allowFailure: true });
  if (resolved.exitCode !== 0) {
    throw new RosterError("CONFIG_INVALID", `workspace.base: "${base}" is not a branch, tag or commit of ${repo.root}`, {
      retryable: false,
      details: { field: "workspace.base", base, repo: repo.root },
    });
  }
  const baseCommit = resolved.stdout.trim();
  const branch = branchName(config.branchPrefix, taskId, attempt, owner);
  const dir = worktreesDir(repo, config);
  return withRepoLock(repo.gitCommonDir, async () => {
    await mkdir(join(dir, owner), { recursive: true });
    const path = join(await realpath(dir), worktreeName(taskId, attempt, owner));
    // The same task and attempt cannot run twice (each claim is a new attempt), so a folder by this name is a crash's leftover.
    if (existsSync(path)) await removeWorktreeFolder(repo, path);
    const added = await git(["worktree", "add", "-b", branch, path, baseCommit], { cwd: repo.root, allowFailure: true });
    if (added.exitCode !== 0) {
      // Ask git why rather than read its message: the one failure with an answer for the user is a taken branch name.
      const exists = await git(["rev-parse", "--verify", "--quiet", `refs/heads/${branch}`], { cwd: repo.root, allowFailure: true });
      if (exists.exitCode === 0) {
        throw new RosterError("INVALID_STATE", `branch ${branch} already exists in ${repo.root} (left by another roster database?); delete it with: git branch -D ${branch}`, {
          retryable: false,
          details: { branch, repo: repo.root },
        });
      }
      throw new RosterError("ADAPTER_FAILED", `git worktree add ${path} (in ${repo.root}) failed: ${added.stderr.trim()}`, { details: { branch, path } });
    }
    return { repo, taskId, attempt, owner, path, branch, base, baseCommit };
  });
}

/** Whether the attempt's worktree goes after it ended. */
export function shouldRemove(keep: KeepMode, succeeded: boolean): boolean {
  return keep === "never" || (keep === "on-failure" && succeeded);
}

/** Reads what the attempt left on its branch, then keeps or removes the worktree as configured. */
export async function finishWorktree(
  worktree: Worktree,
  options: { keep: KeepMode; succeeded: boolean; /** Commit what a successful attempt left uncommitted, with this message. */ autoCommitMessage?: string },
): Promise<WorktreeOutcome> {
  const { repo, path, branch } = worktree;
  const present = existsSync(path);
  let autoCommitted = false;
  if (present && options.succeeded && options.autoCommitMessage !== undefined) autoCommitted = await commitAll(path, options.autoCommitMessage);
  const head = await git(["rev-parse", "--verify", "--quiet", `refs/heads/${branch}`], { cwd: repo.root, allowFailure: true });
  const headCommit = head.exitCode === 0 ? head.stdout.trim() : null;
  const count = headCommit === null ? null : await git(["rev-list", "--count", `${worktree.baseCommit}..${headCommit}`], { cwd: repo.root, allowFailure: true });
  const commits = count !== null && count.exitCode === 0 ? Number(count.stdout.trim()) : 0;
  const status = present ? await git(["status", "--porcelain"], { cwd: path, allowFailure: true }) : null;
  const dirty = status !== null && status.exitCode === 0 && status.stdout.trim() !== "";
  const remove = shouldRemove(options.keep, options.succeeded);
  let branchDeleted = false;
  if (remove) {
    await withRepoLock(repo.gitCommonDir, async () => {
      await removeWorktreeFolder(repo, path);
      if (headCommit !== null && commits === 0) {
        const deleted = await git(["branch", "-D", branch], { cwd: repo.root, allowFailure: true });
        branchDeleted = deleted.exitCode === 0;
      }
    });
  }
  if (!remove && present) markKept(worktree, { taskId: worktree.taskId, attempt: worktree.attempt, succeeded: options.succeeded });
  return { branch, path, kept: !remove, head: headCommit, commits, dirty, branchDeleted, autoCommitted };
}

/**
 * `git add -A` and commit in the worktree when anything changed. Uses the
 * repository's committer; when it has none, commits as "roster" rather than fail
 * the attempt that did the work.
 */
async function commitAll(path: string, message: string): Promise<boolean> {
  const status = await git(["status", "--porcelain"], { cwd: path });
  if (status.stdout.trim() === "") return false;
  await git(["add", "-A"], { cwd: path });
  const identity = await git(["config", "user.email"], { cwd: path, allowFailure: true });
  const fallback = identity.exitCode === 0 ? [] : ["-c", "user.name=roster", "-c", "user.email=roster@localhost"];
  await git([...fallback, "commit", "-q", "--no-verify", "-m", message], { cwd: path });
  return true;
}

/** `git worktree remove --force` (twice forced: also when locked), else delete the folder and prune. */
async function removeWorktreeFolder(repo: RepoInfo, path: string): Promise<void> {
  const removed = await git(["worktree", "remove", "--force", "--force", path], { cwd: repo.root, allowFailure: true });
  if (removed.exitCode !== 0) {
    await rm(path, { recursive: true, force: true });
    await git(["worktree", "prune"], { cwd: repo.root });
  }
}

export interface ListedWorktree {
  path: string;
  branch: string | null;
  taskId: number;
  attempt: number;
  owner: string;
  /** False for a folder git does not know (a crash during `worktree add`). */
  registered: boolean;
}

/** One database's worktrees of a repository (config.owner): by branch name, or by folder name under the worktrees folder. */
export async function listRosterWorktrees(config: OwnedWorkspace): Promise<ListedWorktree[]> {
  const repo = await repoInfo(config.repo);
  return listIn(repo, config);
}

async function listIn(repo: RepoInfo, config: OwnedWorkspace): Promise<ListedWorktree[]> {
  const owner = config.owner ?? "";
  const top = worktreesDir(repo, config);
  const dir = join(top, owner);
  const realDir = existsSync(top) ? join(await realpath(top), owner) : dir;
  const { stdout } = await git(["worktree", "list", "--porcelain"], { cwd: repo.root });
  const branchPattern = new RegExp(`^refs/heads/${escapeRegex(config.branchPrefix + ownerSegment(owner))}task-(\\d+)-a(\\d+)$`);
  const out: ListedWorktree[] = [];
  const seen = new Set<string>();
  for (const block of stdout.split(/\n\n+/)) {
    const lines = block.split("\n");
    const path = lines.find((l) => l.startsWith("worktree "))?.slice("worktree ".length);
    if (path === undefined) continue;
    const branch = lines.find((l) => l.startsWith("branch "))?.slice("branch ".length) ?? null;
    const byBranch = branch === null ? null : branchPattern.exec(branch);
    const byName = dirname(path) === realDir || dirname(path) === dir ? NAME.exec(basename(path)) : null;
    const ids = byBranch ?? byName;
    if (ids === null) continue;
    seen.add(path);
    out.push({ path, branch: branch?.replace(/^refs\/heads\//, "") ?? null, taskId: Number(ids[1]), attempt: Number(ids[2]), owner, registered: true });
  }
  if (existsSync(realDir)) {
    for (const name of await readdir(realDir)) {
      const ids = NAME.exec(name);
      const path = join(realDir, name);
      if (ids === null || seen.has(path)) continue;
      out.push({ path, branch: null, taskId: Number(ids[1]), attempt: Number(ids[2]), owner, registered: false });
    }
  }
  return out;
}

export interface PruneResult {
  removed: string[];
  kept: string[];
}

/**
 * At start: `git worktree prune`, then removes every roster worktree of the
 * repository whose attempt is not running and that was not kept on purpose (a
 * crash's leftovers), after saving what is in it on the attempt's wip ref (./wip.ts)
 * for the run that continues the task. Branches stay. `includeKept` also removes the
 * worktrees kept for inspection (whose attempt saved its work when it failed).
 */
export async function pruneStaleWorktrees(params: {
  /** Whose worktrees (config.owner): no other database's are listed, nor touched. */
  config: OwnedWorkspace;
  /**
   * True when this attempt of this task is running now (in any process). Asked while
   * the repository's lock is held, after listing: every worktree listed was created
   * (under the lock) after its attempt was claimed, so a fresh claim is never missed.
   */
  isRunning: (taskId: number, attempt: number) => boolean | Promise<boolean>;
  includeKept?: boolean;
  /** Only these tasks' worktrees are this database's (the legacy names, shared by every database made before identities). */
  owns?: (taskId: number) => boolean;
}): Promise<PruneResult> {
  const repo = await repoInfo(params.config.repo);
  return withRepoLock(repo.gitCommonDir, async () => {
    await git(["worktree", "prune"], { cwd: repo.root });
    const removed: string[] = [];
    const kept: string[] = [];
    for (const wt of await listIn(repo, params.config)) {
      if (params.owns !== undefined && !params.owns(wt.taskId)) continue;
      if ((await params.isRunning(wt.taskId, wt.attempt)) || (!params.includeKept && wt.registered && isMarkedKept(wt.path))) {
        kept.push(wt.path);
        continue;
      }
      // Saved before the folder goes: the agent's uncommitted files, on top of its commits.
      if (wt.registered && !isMarkedKept(wt.path)) await saveWork(wt, null);
      await removeWorktreeFolder(repo, wt.path);
      removed.push(wt.path);
    }
    await git(["worktree", "prune"], { cwd: repo.root });
    return { removed, kept };
  });
}

/**
 * The mark of a worktree kept on purpose: a file in its admin folder
 * (`.git/worktrees/<name>/roster-kept`), out of the agent's files and of `git status`.
 */
const KEPT_MARK = "roster-kept";

function adminDir(worktreePath: string): string | null {
  try {
    const text = readFileSync(join(worktreePath, ".git"), "utf8");
    const match = /^gitdir:\s*(.+?)\s*$/m.exec(text);
    return match === null ? null : resolve(worktreePath, match[1]!);
  } catch (error) {
    // No .git file: not a linked worktree (or already half removed); it has no mark.
    if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") return null;
    throw error;
  }
}

function markKept(worktree: Worktree, reason: Record<string, unknown>): void {
  const dir = adminDir(worktree.path);
  if (dir !== null) writeFileSync(join(dir, KEPT_MARK), `${JSON.stringify(reason)}\n`);
}

function isMarkedKept(worktreePath: string): boolean {
  const dir = adminDir(worktreePath);
  return dir !== null && existsSync(join(dir, KEPT_MARK));
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
