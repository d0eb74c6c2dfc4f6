import { execFile } from "node:child_process";
import { RosterError } from "../errors.js";

/**
 * `git` through an argv array (never a shell). Prompts are off so a credential
 * question can never hang a worker; errors carry git's own stderr.
 */
export interface GitResult {
  stdout: string;
  stderr: string;
}

/** Git runs that took longer than this are stuck (a held lock, a hook waiting for input), in ms. */
export const GIT_TIMEOUT_MS = 120_000;

export function git(args: string[], options: { cwd: string; allowFailure?: false }): Promise<GitResult>;
export function git(args: string[], options: { cwd: string; allowFailure: true }): Promise<GitResult & { exitCode: number }>;
export function git(args: string[], options: { cwd: string; allowFailure?: boolean }): Promise<GitResult & { exitCode?: number }> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      args,
      {
        cwd: options.cwd,
        env: { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_OPTIONAL_LOCKS: "0", LC_ALL: "C" },
        maxBuffer: 64 * 1024 * 1024,
        timeout: GIT_TIMEOUT_MS,
        windowsHide: true,
        encoding: "utf8",
      },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve(options.allowFailure ? { stdout, stderr, exitCode: 0 } : { stdout, stderr });
          return;
        }
        const exitCode = typeof error.code === "number" ? error.code : null;
        if (options.allowFailure && exitCode !== null) {
          resolve({ stdout, stderr, exitCode });
          return;
        }
        const why = error.code === "ENOENT" ? "git is not installed or not on PATH" : stderr.trim() || error.message;
        reject(
          new RosterError("ADAPTER_FAILED", `git ${args.join(" ")} (in ${options.cwd}) failed: ${why}`, {
            cause: error,
            details: { args, cwd: options.cwd, exitCode, stderr: stderr.trim() },
          }),
        );
      },
    );
  });
}
