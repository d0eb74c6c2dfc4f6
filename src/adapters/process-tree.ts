import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { RosterError } from "../errors.js";
import { TREE_KILL_GRACE_MS_DEFAULT, TREE_TOKEN_ENV, unwatchTree, watchTree, watchdogPipe, watchdogToken } from "./watchdog.js";

/**
 * Process trees: every child an adapter starts, and everything that child starts,
 * ends with its attempt. All of it is behind this helper and its watchdog (./watchdog.ts), the one place that tells POSIX process groups from Windows.
 *
 * On POSIX a tree's leader is spawned detached, i.e. in a new session and process
 * group (setsid), so one signal to the group (kill(-pgid)) reaches the leader and
 * everything it started, wherever the supervisor's own terminal signals go. On
 * Windows there are no process groups: `taskkill /T /F` walks the tree while its
 * leader lives, and nothing is done after the leader has exited (its pid may by then
 * name another process).
 *
 * A tree ends with its attempt whatever way the attempt ends (startTree):
 * - the leader exits (success, failure, killed): the rest of its group gets SIGTERM,
 *   then SIGKILL after the grace unless it is gone first; the tree's `ended` settles
 *   then, and stdio is cut if a process outside the group still holds it;
 * - the caller stops it (abort, timeout, output over a limit): the same, SIGTERM now;
 * - this process (or worker thread) dies, kill -9 included: the watchdog (./watchdog.ts);
 * - the leader dies while this process (or thread) cannot see it, its event loop
 *   held (a thread-mate adapter in a busy loop, a supervisor frozen by SIGSTOP): the
 *   watchdog, which polls its leaders, ends the group on the tree's own grace.
 */
const IS_WINDOWS = process.platform === "win32";
const IS_LINUX = process.platform === "linux";

/** After the leader exited and its group is gone, how long stdio may stay open (held by an escaped process) before it is cut, in ms. */
export const STDIO_DRAIN_MS = 250;
/** How often an ending group is checked for live members, in ms. */
const GROUP_PROBE_MS = 20;

export interface TreeExit {
  /** The leader's exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface TreeOptions extends Omit<SpawnOptions, "shell" | "detached"> {
  /** SIGTERM → SIGKILL delay for the group when the attempt ends, in ms. Default TREE_KILL_GRACE_MS_DEFAULT. */
  graceMs?: number;
}

export interface Tree {
  readonly child: ChildProcess;
  /**
   * Settles once the leader has exited, the rest of its group is gone (SIGTERM,
   * then SIGKILL after the grace) and stdio has closed (or was cut STDIO_DRAIN_MS
   * later). Rejects with the spawn error when the program could not start.
   */
  readonly ended: Promise<TreeExit>;
  /** Ends the whole tree now: SIGTERM to the group, SIGKILL after the grace. Idempotent. */
  stop(): void;
}

/**
 * Starts `command` with an args array (never a shell) as the leader of a tree that
 * ends with its attempt (see the file comment). The watchdog is up before the
 * child is spawned, and the child is registered with it in the same synchronous
 * step as the spawn, so there is no moment in which a kill -9 of this process
 * leaves a tree unseen (on Linux not even inside spawn(): the watchdog's pipe is
 * inherited until exec, and the tree carries the watchdog's token from exec on).
 */
export function startTree(command: string, args: readonly string[], options: TreeOptions = {}): Tree {
  const { graceMs = TREE_KILL_GRACE_MS_DEFAULT, ...spawnOptions } = options;
  watchdogPipe();
  const child = spawn(command, args, {
    ...spawnOptions,
    env: { ...(spawnOptions.env ?? process.env), [TREE_TOKEN_ENV]: watchdogToken },
    shell: false,
    detached: !IS_WINDOWS,
    windowsHide: true,
  });
  const pid = child.pid;
  if (pid !== undefined) watchTree(pid, graceMs);

  let stopDeadline: number | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  let leaderExited = false;
  let over = false;
  const stop = (): void => {
    if (pid === undefined || over || stopDeadline !== null) return;
    stopDeadline = Date.now() + graceMs;
    if (leaderExited) return; // the group is being ended already, on the same deadline
    signalTree(child, "SIGTERM");
    killTimer = setTimeout(() => signalTree(child, "SIGKILL"), graceMs);
    killTimer.unref();
  };

  let closed = false;
  child.once("close", () => {
    closed = true;
  });
  const ended = new Promise<TreeExit>((resolve, reject) => {
    child.on("error", (error) => {
      // Only a spawn failure ends the tree here; a failed kill is not the tree's end.
      if (pid === undefined) reject(error);
    });
    child.once("exit", (code, signal) => {
      leaderExited = true;
      void (async () => {
        await endGroup(child, () => stopDeadline ?? Date.now() + graceMs);
        over = true;
        if (killTimer !== null) clearTimeout(killTimer);
        if (pid !== undefined) unwatchTree(pid);
        if (!closed) await drainStdio(child);
        resolve({ code, signal });
      })();
    });
  });
  return { child, ended, stop };
}

/**
 * After the leader's exit: SIGTERM to what is left of its group, then SIGKILL at the
 * deadline unless the group is gone first. Not on Windows (no groups, and the
 * leader's pid may already name another process).
 */
async function endGroup(child: ChildProcess, deadline: () => number): Promise<void> {
  const pgid = child.pid;
  if (IS_WINDOWS || pgid === undefined || !groupAlive(pgid)) return;
  signalGroup(pgid, "SIGTERM");
  const until = deadline();
  while (groupAlive(pgid)) {
    if (Date.now() >= until) {
      signalGroup(pgid, "SIGKILL");
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, GROUP_PROBE_MS));
  }
}

/** Waits for the child's stdio to close; a process outside the group (it called setsid) that still holds it does not hold the attempt. */
async function drainStdio(child: ChildProcess): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      for (const stream of [child.stdin, child.stdout, child.stderr]) stream?.destroy();
      resolve();
    }, STDIO_DRAIN_MS);
    child.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Whether the process group has a member that is not a zombie (orphans wait for init to reap them, seconds in some containers). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  if (!IS_LINUX) return true;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (entry.charCodeAt(0) > 57) continue; // not a pid
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "latin1");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") return true;
    } catch {
      // gone while we looked
    }
  }
  return false;
}

function signalGroup(pgid: number, signal: "SIGTERM" | "SIGKILL"): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: gone already; EPERM: not ours to signal. Either way nothing more can be done.
  }
}

/**
 * Spawns a tree and returns its leader; the tree ends with its leader as startTree
 * describes. For callers that only need the child.
 */
export function spawnTree(command: string, args: readonly string[], options: Omit<SpawnOptions, "shell" | "detached">): ChildProcess {
  const tree = startTree(command, args, options);
  // The caller learns of a spawn failure through the child's "error" event.
  tree.ended.catch(() => undefined);
  return tree.child;
}

/**
 * Signals the child and all its descendants. "SIGTERM" asks, "SIGKILL" insists
 * (on Windows both are a forced taskkill). A tree that is already gone is not an error.
 */
export function killTree(child: ChildProcess, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): void {
  signalTree(child, signal);
}

function signalTree(child: ChildProcess, signal: "SIGTERM" | "SIGKILL"): void {
  const pid = child.pid;
  if (pid === undefined) return;
  if (IS_WINDOWS) {
    const killer = spawn("taskkill", ["/pid", String(pid), "/T", "/F"], { stdio: "ignore", windowsHide: true });
    killer.on("error", () => child.kill(signal));
    return;
  }
  try {
    process.kill(-pid, signal);
  } catch (error) {
    // ESRCH: the group is gone already. Anything else: fall back to the child alone.
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") child.kill(signal);
  }
}

/**
 * Why a process could not start, as the attempt's error. Node reports a working folder that
 * does not exist as ENOENT on the command, so ENOENT is told apart here: a missing folder
 * (deleted by another task, a checkout or a mount not there yet) is ADAPTER_FAILED and
 * retryable, saying so, while a program not found (or not executable) is ADAPTER_NOT_FOUND
 * and not retried: no second attempt would find it.
 */
export function spawnFailure(command: string, cwd: string | undefined, error: unknown, notFound: string): RosterError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT" && cwd !== undefined && !isFolder(cwd)) {
    return new RosterError("ADAPTER_FAILED", `${command}: cannot start: its working folder ${cwd} does not exist`, { cause: error, retryable: true, details: { command, cwd } });
  }
  if (code === "ENOENT" || code === "EACCES") {
    return new RosterError("ADAPTER_NOT_FOUND", `${command}: ${notFound} (${(error as Error).message})`, { cause: error, retryable: false, details: { command, ...(cwd === undefined ? {} : { cwd }) } });
  }
  return new RosterError("ADAPTER_FAILED", `${command}: cannot start (${(error as Error).message})`, { cause: error, retryable: true, details: { command, ...(cwd === undefined ? {} : { cwd }) } });
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
