import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { threadId } from "node:worker_threads";
import { RosterError } from "../errors.js";

/**
 * Serialises worktree changes per repository. `git worktree add/remove/prune` on
 * one repository at the same moment race on `.git/worktrees` and ref locks, and
 * roster runs them from several worker threads and processes. So: a promise chain
 * per repository inside this thread, around a lock folder in the repository's git
 * folder (mkdir is atomic everywhere) for the other threads and processes.
 *
 * A lock left by a crash is broken when its owner process is gone or when it is
 * older than LOCK_STALE_MS (worktree commands take well under a second; a held
 * lock that old belongs to a thread that was terminated mid-command).
 */
export const LOCK_DIR_NAME = "roster-worktree.lock";
export const LOCK_STALE_MS = 30_000;
export const LOCK_WAIT_MS_MAX = 120_000;

const chains = new Map<string, Promise<unknown>>();

/** Runs `fn` holding the lock of the repository whose git common folder is `gitCommonDir`. */
export function withRepoLock<T>(gitCommonDir: string, fn: () => Promise<T>): Promise<T> {
  const previous = chains.get(gitCommonDir) ?? Promise.resolve();
  const next = previous.then(
    () => holdingFileLock(gitCommonDir, fn),
    () => holdingFileLock(gitCommonDir, fn),
  );
  const settled = next.then(
    () => undefined,
    () => undefined,
  );
  chains.set(gitCommonDir, settled);
  void settled.then(() => {
    if (chains.get(gitCommonDir) === settled) chains.delete(gitCommonDir);
  });
  return next;
}

async function holdingFileLock<T>(gitCommonDir: string, fn: () => Promise<T>): Promise<T> {
  const lockDir = join(gitCommonDir, LOCK_DIR_NAME);
  await acquire(lockDir);
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

async function acquire(lockDir: string): Promise<void> {
  const started = Date.now();
  let waitMs = 10;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, "owner.json"), JSON.stringify({ pid: process.pid, threadId, at: Date.now() }));
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    if (await isStale(lockDir)) {
      await rm(lockDir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() - started > LOCK_WAIT_MS_MAX) {
      throw new RosterError("ADAPTER_FAILED", `timed out after ${LOCK_WAIT_MS_MAX} ms waiting for the worktree lock ${lockDir}`, { details: { lockDir } });
    }
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    waitMs = Math.min(waitMs * 2, 200);
  }
}

async function isStale(lockDir: string): Promise<boolean> {
  let owner: { pid?: unknown; at?: unknown };
  try {
    owner = JSON.parse(await readFile(join(lockDir, "owner.json"), "utf8")) as typeof owner;
  } catch (error) {
    // Owner file not written yet (the holder is between mkdir and writeFile) or gone with the lock.
    if ((error as NodeJS.ErrnoException).code !== "ENOENT" && !(error instanceof SyntaxError)) throw error;
    // A holder that died before writing the file leaves only the folder: judge by its age.
    const since = await stat(lockDir).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    return since > LOCK_STALE_MS;
  }
  if (typeof owner.at === "number" && Date.now() - owner.at > LOCK_STALE_MS) return true;
  return typeof owner.pid === "number" && owner.pid !== process.pid && !processAlive(owner.pid);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
