import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import type { Writable } from "node:stream";
import { threadId } from "node:worker_threads";

/**
 * Process trees: every child an adapter starts, and everything that child starts,
 * ends with its attempt. All of it is behind this one helper, the one place that tells POSIX process groups from Windows.
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
 * - this process (or worker thread) dies, kill -9 included: the watchdog (below);
 * - the leader dies while this process (or thread) cannot see it, its event loop
 *   held (a thread-mate adapter in a busy loop, a supervisor frozen by SIGSTOP): the
 *   watchdog, which polls its leaders, ends the group on the tree's own grace.
 */
const IS_WINDOWS = process.platform === "win32";
const IS_LINUX = process.platform === "linux";

/** SIGTERM → SIGKILL delay for a tree's group when its attempt ends, in ms (startTree's default). */
export const TREE_KILL_GRACE_MS_DEFAULT = 2_000;
/** After the leader exited and its group is gone, how long stdio may stay open (held by an escaped process) before it is cut, in ms. */
export const STDIO_DRAIN_MS = 250;
/** How often an ending group is checked for live members, in ms. */
const GROUP_PROBE_MS = 20;
/** How often the watchdog looks whether the leaders it watches are still alive, in ms. */
export const WATCHDOG_LEADER_PROBE_MS = 100;
/** After this process died, how long the watchdog gives the trees between SIGTERM and SIGKILL, in ms. */
export const WATCHDOG_KILL_GRACE_MS = 1_500;
/** argv marker of the watchdog process, so it can be told apart in a process list. */
export const WATCHDOG_MARKER = "roster-watchdog";
/**
 * Environment variable every tree's leader gets (and its descendants inherit): the
 * token of the watchdog that watches it. On Linux the watchdog also finds trees by
 * it, which closes the moment between fork() and the registration of the pid.
 */
export const TREE_TOKEN_ENV = "ROSTER_TREE_TOKEN";

/**
 * The watchdog's source (`node -e`). It holds the read end of a pipe whose write
 * end only this process (or thread) has, and reads lines from it: `+PID GRACE`
 * watch the tree PID leads (its group gets GRACE ms between SIGTERM and SIGKILL),
 * `-PID` that tree is over. End of input means this process (or thread) is gone:
 * kill -9 of the supervisor, a second Ctrl-C, a terminated worker thread. It then
 * ends every tree it watches, plus (Linux) every process whose environment carries
 * its token: SIGTERM, then SIGKILL.
 *
 * While this process lives, the watchdog also looks at its leaders every
 * WATCHDOG_LEADER_PROBE_MS: a leader that died (gone, or a zombie nobody reaped
 * because this process's event loop is held) has its group ended, SIGTERM then
 * SIGKILL after the tree's grace, as startTree would have done. Safe against pid
 * reuse: a pid is not handed out again while it names a live process group, and
 * the tree stays registered until this process says `-PID`. Not on Windows (no
 * process groups); elsewhere than Linux a zombie leader counts as alive.
 *
 * It runs in a session of its own and ignores SIGINT and SIGHUP, so a terminal's
 * Ctrl-C (sent to the supervisor's foreground process group) or hang-up does not
 * end it before the supervisor.
 */
const WATCHDOG_SOURCE = `
const windows = process.platform === "win32";
const token = process.argv[2];
const needle = "\\0${TREE_TOKEN_ENV}=" + token + "\\0";
for (const signal of ["SIGINT", "SIGHUP"]) process.on(signal, () => {});
const pids = new Map(); // leader pid -> grace in ms
const ended = new Set(); // leaders found dead whose group was signalled
let buffer = "";
let ending = false;
const kill = (pid, signal) => {
  try {
    if (windows) require("node:child_process").spawnSync("taskkill", ["/pid", String(pid), "/T", "/F"], { stdio: "ignore", windowsHide: true });
    else process.kill(pid, signal);
  } catch {}
};
// Linux: processes that carry this watchdog's token, with their group.
const marked = () => {
  if (process.platform !== "linux") return [];
  const found = [];
  let entries = [];
  try { entries = require("node:fs").readdirSync("/proc"); } catch { return found; }
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const environ = require("node:fs").readFileSync("/proc/" + entry + "/environ", "latin1");
      if (!("\\0" + environ + "\\0").includes(needle)) continue;
      const stat = require("node:fs").readFileSync("/proc/" + entry + "/stat", "latin1");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      found.push({ pid: Number(entry), pgid: Number(fields[2]) });
    } catch {}
  }
  return found;
};
const killAll = (signal) => {
  let any = pids.size > 0;
  for (const pid of pids.keys()) kill(windows ? pid : -pid, signal);
  for (const { pid, pgid } of marked()) {
    any = true;
    kill(pid, signal);
    if (pgid > 1 && pgid !== process.pid) kill(-pgid, signal);
  }
  return any;
};
// A leader is dead when it is gone or a zombie (Linux: /proc; elsewhere: kill 0).
const leaderDead = (pid) => {
  if (process.platform === "linux") {
    try {
      const stat = require("node:fs").readFileSync("/proc/" + pid + "/stat", "latin1");
      const state = stat[stat.lastIndexOf(")") + 2];
      return state === "Z" || state === "X";
    } catch { return true; }
  }
  try { process.kill(pid, 0); return false; } catch (error) { return error.code === "ESRCH"; }
};
const probe = () => {
  if (ending || windows) return;
  for (const [pid, grace] of pids) {
    if (ended.has(pid) || !leaderDead(pid)) continue;
    ended.add(pid);
    kill(-pid, "SIGTERM");
    setTimeout(() => { if (pids.has(pid)) kill(-pid, "SIGKILL"); }, grace).unref();
  }
};
setInterval(probe, ${WATCHDOG_LEADER_PROBE_MS}).unref();
const end = () => {
  if (ending) return;
  ending = true;
  if (!killAll("SIGTERM")) process.exit(0);
  setTimeout(() => {
    killAll("SIGKILL");
    process.exit(0);
  }, ${WATCHDOG_KILL_GRACE_MS});
};
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  buffer += chunk;
  let newline;
  while ((newline = buffer.indexOf("\\n")) >= 0) {
    const line = buffer.slice(0, newline);
    buffer = buffer.slice(newline + 1);
    const [pid, grace] = line.slice(1).split(" ").map(Number);
    if (line[0] === "+") pids.set(pid, grace > 0 ? grace : ${TREE_KILL_GRACE_MS_DEFAULT});
    else if (line[0] === "-") {
      pids.delete(pid);
      ended.delete(pid);
    }
  }
});
process.stdin.on("end", end);
process.stdin.on("error", end);
`;

/** This process's (or thread's) watchdog token: every tree spawned here carries it. */
const token = `${process.pid}-${threadId}-${randomBytes(6).toString("hex")}`;
/** Leaders of the trees spawned here that are not over yet, with their grace (re-sent to a restarted watchdog). */
const liveTrees = new Map<number, number>();
let watchdog: { pipe: Writable; pid: number | undefined } | null = null;

/**
 * The watchdog's pipe: started before the first tree (and again if it went away,
 * told of every live tree). Null when it cannot start: it is a safety net, and
 * trees still run without it.
 */
function watchdogPipe(): Writable | null {
  if (watchdog !== null && !watchdog.pipe.destroyed) return watchdog.pipe;
  const env = { ...process.env };
  delete env[TREE_TOKEN_ENV];
  const proc = spawn(process.execPath, ["-e", WATCHDOG_SOURCE, WATCHDOG_MARKER, token], {
    stdio: ["pipe", "ignore", "ignore"],
    // Its own session: a terminal's SIGINT/SIGHUP to the supervisor's group does not reach it.
    detached: !IS_WINDOWS,
    env,
    windowsHide: true,
  });
  const pipe = proc.stdin;
  if (pipe === null) return null;
  const current = { pipe, pid: proc.pid };
  const forget = (): void => {
    if (watchdog === current) watchdog = null;
  };
  proc.on("error", forget);
  proc.on("exit", forget);
  pipe.on("error", forget);
  // Neither the watchdog nor its pipe may keep this process (or thread) alive.
  proc.unref();
  (pipe as Writable & { unref?: () => void }).unref?.();
  watchdog = current;
  // A small write to a fresh pipe goes to the kernel at once (libuv tries the write
  // synchronously), so the watchdog knows the tree even if we die right after.
  if (liveTrees.size > 0) pipe.write([...liveTrees].map(([pid, graceMs]) => `+${pid} ${graceMs}\n`).join(""));
  return pipe;
}

/** The pid of this process's (or thread's) watchdog, started if need be; null if it cannot run. For tests and diagnostics. */
export function watchdogPid(): number | null {
  watchdogPipe();
  return watchdog?.pid ?? null;
}

function register(pid: number, graceMs: number): void {
  liveTrees.set(pid, graceMs);
  watchdogPipe()?.write(`+${pid} ${graceMs}\n`);
}

function unregister(pid: number): void {
  if (!liveTrees.delete(pid)) return;
  if (watchdog !== null && !watchdog.pipe.destroyed) watchdog.pipe.write(`-${pid}\n`);
}

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
    env: { ...(spawnOptions.env ?? process.env), [TREE_TOKEN_ENV]: token },
    shell: false,
    detached: !IS_WINDOWS,
    windowsHide: true,
  });
  const pid = child.pid;
  if (pid !== undefined) register(pid, graceMs);

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
        if (pid !== undefined) unregister(pid);
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
