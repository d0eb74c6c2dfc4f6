import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import type { Writable } from "node:stream";

/**
 * Process-tree termination behind one helper (DESIGN: portability). On POSIX the
 * child is spawned detached, i.e. as the leader of a new process group, so one
 * signal to the group reaches the child and everything it started. On Windows
 * there are no process groups: `taskkill /T /F` walks the tree.
 */
const IS_WINDOWS = process.platform === "win32";

/** After this process died, how long the watchdog gives the trees between SIGTERM and SIGKILL, in ms. */
export const WATCHDOG_KILL_GRACE_MS = 1_500;
/** argv marker of the watchdog process, so it can be told apart in a process list. */
export const WATCHDOG_MARKER = "roster-watchdog";

/**
 * The watchdog's source (`node -e`). It holds the read end of a pipe whose write
 * end only this process (or thread) has, and reads lines from it: `+PID` watch
 * the tree PID leads, `-PID` it ended on its own. End of input means this process
 * is gone (kill -9 of the supervisor, or its worker thread terminated), so it ends
 * every tree it still watches: SIGTERM, then SIGKILL.
 */
const WATCHDOG_SOURCE = `
const windows = process.platform === "win32";
const pids = new Set();
let buffer = "";
let ending = false;
const kill = (pid, signal) => {
  try {
    if (windows) require("node:child_process").spawnSync("taskkill", ["/pid", String(pid), "/T", "/F"], { stdio: "ignore", windowsHide: true });
    else process.kill(-pid, signal);
  } catch {}
};
const end = () => {
  if (ending) return;
  ending = true;
  if (pids.size === 0) process.exit(0);
  for (const pid of pids) kill(pid, "SIGTERM");
  setTimeout(() => {
    for (const pid of pids) kill(pid, "SIGKILL");
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
    const pid = Number(line.slice(1));
    if (line[0] === "+") pids.add(pid);
    else if (line[0] === "-") pids.delete(pid);
  }
});
process.stdin.on("end", end);
process.stdin.on("error", end);
`;

/**
 * Spawns `command` with an args array (never a shell) so that killTree can end its whole tree.
 *
 * A SIGKILL of this process cannot run any cleanup, and the detached tree would
 * live on: after a supervisor's kill -9, the retry of the attempt would run beside
 * the orphaned agent CLI of the lost one. So every tree is registered with a
 * watchdog process (see WATCHDOG_SOURCE) that ends it when this process dies
 * before the child does. One watchdog serves every tree this process or worker
 * thread spawns, so hundreds of running agents cost one extra process, not hundreds.
 */
export function spawnTree(command: string, args: readonly string[], options: Omit<SpawnOptions, "shell" | "detached">): ChildProcess {
  const child = spawn(command, args, { ...options, shell: false, detached: !IS_WINDOWS, windowsHide: true });
  if (child.pid !== undefined) watch(child.pid, child);
  return child;
}

let watchdog: Writable | null = null;

/** The watchdog's pipe, started on first use (and again if it went away). Null when it cannot start. */
function watchdogPipe(): Writable | null {
  if (watchdog !== null && !watchdog.destroyed) return watchdog;
  const proc = spawn(process.execPath, ["-e", WATCHDOG_SOURCE, WATCHDOG_MARKER], { stdio: ["pipe", "ignore", "ignore"], windowsHide: true });
  const pipe = proc.stdin;
  if (pipe === null) return null;
  // The watchdog is a safety net: if it cannot start or goes away, the children still run as before.
  const forget = () => {
    if (watchdog === pipe) watchdog = null;
  };
  proc.on("error", forget);
  proc.on("exit", forget);
  pipe.on("error", forget);
  // Neither the watchdog nor its pipe may keep this process (or thread) alive.
  proc.unref();
  (pipe as Writable & { unref?: () => void }).unref?.();
  watchdog = pipe;
  return pipe;
}

function watch(pid: number, child: ChildProcess): void {
  const pipe = watchdogPipe();
  if (pipe === null) return;
  pipe.write(`+${pid}\n`);
  child.once("exit", () => {
    if (watchdog === pipe) pipe.write(`-${pid}\n`);
  });
}

/**
 * Signals the child and all its descendants. "SIGTERM" asks, "SIGKILL" insists
 * (on Windows both are a forced taskkill). A tree that is already gone is not an error.
 */
export function killTree(child: ChildProcess, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): void {
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
