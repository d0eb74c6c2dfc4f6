/**
 * The watchdog of process trees (src/adapters/process-tree.ts): one small process per
 * process (or worker thread) that ends the trees started here when this process (or
 * thread) dies, and the group of a leader that died while this process could not see it.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { Writable } from "node:stream";
import { threadId } from "node:worker_threads";

const IS_WINDOWS = process.platform === "win32";

/** SIGTERM → SIGKILL delay for a tree's group when its attempt ends, in ms: startTree's default, and the watchdog's for a tree registered without one. */
export const TREE_KILL_GRACE_MS_DEFAULT = 2_000;
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

/** This process's (or thread's) watchdog token: every tree spawned here carries it (in TREE_TOKEN_ENV). */
export const watchdogToken = `${process.pid}-${threadId}-${randomBytes(6).toString("hex")}`;
/** Leaders of the trees spawned here that are not over yet, with their grace (re-sent to a restarted watchdog). */
const liveTrees = new Map<number, number>();
let watchdog: { pipe: Writable; pid: number | undefined } | null = null;

/**
 * The watchdog's pipe: started before the first tree (and again if it went away,
 * told of every live tree). Null when it cannot start: it is a safety net, and
 * trees still run without it.
 */
export function watchdogPipe(): Writable | null {
  if (watchdog !== null && !watchdog.pipe.destroyed) return watchdog.pipe;
  const env = { ...process.env };
  delete env[TREE_TOKEN_ENV];
  const proc = spawn(process.execPath, ["-e", WATCHDOG_SOURCE, WATCHDOG_MARKER, watchdogToken], {
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

/** The tree `pid` leads is watched: its group gets `graceMs` between SIGTERM and SIGKILL. */
export function watchTree(pid: number, graceMs: number): void {
  liveTrees.set(pid, graceMs);
  watchdogPipe()?.write(`+${pid} ${graceMs}\n`);
}

/** The tree `pid` led is over. */
export function unwatchTree(pid: number): void {
  if (!liveTrees.delete(pid)) return;
  if (watchdog !== null && !watchdog.pipe.destroyed) watchdog.pipe.write(`-${pid}\n`);
}
