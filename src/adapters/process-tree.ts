import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";

/**
 * Process-tree termination behind one helper (DESIGN: portability). On POSIX the
 * child is spawned detached, i.e. as the leader of a new process group, so one
 * signal to the group reaches the child and everything it started. On Windows
 * there are no process groups: `taskkill /T /F` walks the tree.
 */
const IS_WINDOWS = process.platform === "win32";

/** After this process died, how long the watchdog gives the tree between SIGTERM and SIGKILL, in ms. */
export const WATCHDOG_KILL_GRACE_MS = 1_500;

/**
 * The watchdog's source (`node -e`, argv[1] the child's pid). It holds the read end
 * of a pipe whose write end only this process has. A child that exits normally is
 * followed by "done"; end of input without it means this process is gone (kill -9
 * of the supervisor), so the watchdog ends the child's tree: SIGTERM, then SIGKILL.
 */
const WATCHDOG_SOURCE = `
const pid = Number(process.argv[1]);
const windows = process.platform === "win32";
let done = false;
let input = "";
const kill = (signal) => {
  try {
    if (windows) require("node:child_process").spawnSync("taskkill", ["/pid", String(pid), "/T", "/F"], { stdio: "ignore", windowsHide: true });
    else process.kill(-pid, signal);
  } catch {}
};
const end = () => {
  if (done) process.exit(0);
  done = true;
  kill("SIGTERM");
  setTimeout(() => { kill("SIGKILL"); process.exit(0); }, ${WATCHDOG_KILL_GRACE_MS});
};
process.stdin.on("data", (chunk) => {
  input += chunk;
  if (input.includes("done")) { done = true; process.exit(0); }
});
process.stdin.on("end", end);
process.stdin.on("error", end);
`;

/**
 * Spawns `command` with an args array (never a shell) so that killTree can end its whole tree.
 *
 * A SIGKILL of this process cannot run any cleanup, and the detached tree would
 * live on: after a supervisor's kill -9, the retry of the attempt would run beside
 * the orphaned agent CLI of the lost one. So each tree gets a watchdog process
 * (see WATCHDOG_SOURCE) that ends it when this process dies before the child.
 */
export function spawnTree(command: string, args: readonly string[], options: Omit<SpawnOptions, "shell" | "detached">): ChildProcess {
  const child = spawn(command, args, { ...options, shell: false, detached: !IS_WINDOWS, windowsHide: true });
  if (child.pid !== undefined) watch(child);
  return child;
}

function watch(child: ChildProcess): void {
  const watchdog = spawn(process.execPath, ["-e", WATCHDOG_SOURCE, String(child.pid)], { stdio: ["pipe", "ignore", "ignore"], windowsHide: true });
  // The watchdog is a safety net: if it cannot start, the child still runs as before.
  watchdog.on("error", () => undefined);
  watchdog.stdin!.on("error", () => undefined);
  watchdog.unref();
  child.once("exit", () => watchdog.stdin!.end("done\n"));
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
