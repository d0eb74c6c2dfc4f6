import { spawn, type ChildProcess } from "node:child_process";
import { RosterError } from "../../errors.js";
import type { CliRun } from "./output.js";

/**
 * Runs one CLI to completion: argv array (never a shell), optional stdin, stdout
 * collected up to a bound, stderr kept as a tail. On abort the whole process tree
 * gets SIGTERM, then SIGKILL after a grace period (on Windows, `taskkill /T /F`).
 *
 * The child gets its own process group (detached on POSIX) so that the tree can be
 * signalled as one: agent CLIs start shells, language servers and test runners.
 */
export const KILL_GRACE_MS_DEFAULT = 5_000;
/** Largest stdout kept, in bytes; beyond it the run fails rather than eat memory. */
export const STDOUT_BYTES_MAX = 64 * 1024 * 1024;
const STDERR_KEEP_CHARS = 64 * 1024;

export interface RunProcessOptions {
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdin: string | null;
  signal: AbortSignal;
  killGraceMs?: number;
}

export interface ProcessResult extends CliRun {
  aborted: boolean;
  pid: number | null;
}

export function runProcess(options: RunProcessOptions): Promise<ProcessResult> {
  const { command, args, signal } = options;
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError(command, signal));
      return;
    }
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        cwd: options.cwd,
        env: options.env,
        stdio: [options.stdin === null ? "ignore" : "pipe", "pipe", "pipe"],
        detached: process.platform !== "win32",
        windowsHide: true,
        shell: false,
      });
    } catch (error) {
      reject(spawnError(command, options.cwd, error));
      return;
    }
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let overflow = false;
    let stderr = "";
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;

    child.stdout!.on("data", (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > STDOUT_BYTES_MAX) {
        if (!overflow) {
          overflow = true;
          killTree(child, "SIGKILL");
        }
        return;
      }
      stdout.push(chunk);
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEEP_CHARS);
    });
    if (child.stdin) {
      // A CLI that exits without reading all of stdin closes the pipe: EPIPE is its answer, not ours to report.
      child.stdin.on("error", () => undefined);
      child.stdin.end(options.stdin);
    }

    const onAbort = (): void => {
      aborted = true;
      killTree(child, "SIGTERM");
      killTimer = setTimeout(() => killTree(child, "SIGKILL"), options.killGraceMs ?? KILL_GRACE_MS_DEFAULT);
      killTimer.unref();
    };
    signal.addEventListener("abort", onAbort, { once: true });

    child.once("error", (error) => {
      signal.removeEventListener("abort", onAbort);
      if (killTimer) clearTimeout(killTimer);
      reject(spawnError(command, options.cwd, error));
    });
    child.once("close", (exitCode, exitSignal) => {
      signal.removeEventListener("abort", onAbort);
      if (killTimer) clearTimeout(killTimer);
      if (aborted) {
        reject(abortError(command, signal));
        return;
      }
      if (overflow) {
        reject(new RosterError("ADAPTER_OUTPUT_INVALID", `${command} printed more than ${STDOUT_BYTES_MAX} bytes on stdout`, { retryable: false }));
        return;
      }
      resolve({
        command,
        exitCode,
        signal: exitSignal,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr,
        aborted,
        pid: child.pid ?? null,
      });
    });
  });
}

/** Signals the child's whole process tree; a tree that is already gone is fine. */
export function killTree(child: ChildProcess, sig: NodeJS.Signals): void {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  if (process.platform === "win32") {
    const killer = spawn("taskkill", ["/pid", String(pid), "/T", "/F"], { stdio: "ignore", windowsHide: true });
    killer.on("error", () => child.kill(sig));
    return;
  }
  try {
    process.kill(-pid, sig);
  } catch (error) {
    // ESRCH: the group is gone already. Anything else: fall back to the child alone.
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") child.kill(sig);
  }
}

function abortError(command: string, signal: AbortSignal): RosterError {
  const reason = signal.reason instanceof Error ? signal.reason.message : signal.reason === undefined ? "aborted" : String(signal.reason);
  return new RosterError("ABORTED", `${command} was stopped: ${reason}`, { cause: signal.reason });
}

function spawnError(command: string, cwd: string, error: unknown): RosterError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") {
    return new RosterError("ADAPTER_NOT_FOUND", `agent CLI "${command}" was not found (is it installed and on PATH?), or the folder ${cwd} does not exist`, {
      cause: error,
      retryable: false,
      details: { command, cwd },
    });
  }
  return new RosterError("ADAPTER_FAILED", `could not start "${command}": ${(error as Error).message}`, { cause: error, details: { command, cwd } });
}
