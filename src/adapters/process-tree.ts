import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";

/**
 * Process-tree termination behind one helper (DESIGN: portability). On POSIX the
 * child is spawned detached, i.e. as the leader of a new process group, so one
 * signal to the group reaches the child and everything it started. On Windows
 * there are no process groups: `taskkill /T /F` walks the tree.
 */
const IS_WINDOWS = process.platform === "win32";

/** Spawns `command` with an args array (never a shell) so that killTree can end its whole tree. */
export function spawnTree(command: string, args: readonly string[], options: Omit<SpawnOptions, "shell" | "detached">): ChildProcess {
  return spawn(command, args, { ...options, shell: false, detached: !IS_WINDOWS, windowsHide: true });
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
