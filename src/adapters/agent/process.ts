import { StringDecoder } from "node:string_decoder";
import { RosterError } from "../../errors.js";
import { spawnFailure, startTree, type Tree } from "../process-tree.js";
import { abortReason } from "../work.js";
import type { CliRun } from "./output.js";

/**
 * Runs one CLI to completion: argv array (never a shell), optional stdin, stdout
 * collected up to a bound, stderr kept as a tail. The CLI and everything it starts
 * (shells, language servers, test runners, dev servers) are one process tree
 * (../process-tree.ts) that ends with the attempt: on abort the whole tree gets
 * SIGTERM, then SIGKILL after a grace period; when the CLI exits, what it left
 * running gets the same, and the run settles once that is gone.
 */
/**
 * SIGTERM → SIGKILL delay, in ms. Under the pool's abort grace (ABORT_GRACE_MS_DEFAULT,
 * 2 s) on purpose: a thread that is terminated takes this timer with it, and the
 * CLI would be left running.
 */
export const KILL_GRACE_MS_DEFAULT = 1_500;
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
  /** Called with each complete line of stdout as it arrives (without its newline), for output read while the CLI runs (./stream-usage.ts). */
  onStdoutLine?: (line: string) => void;
}

export interface ProcessResult extends CliRun {
  aborted: boolean;
  pid: number | null;
}

export function runProcess(options: RunProcessOptions): Promise<ProcessResult> {
  const { command, args, signal } = options;
  return new Promise((resolvePromise, rejectPromise) => {
    // "error" and "close" can both fire for one child; the first one settles.
    let settled = false;
    const resolve = (value: ProcessResult): void => {
      if (!settled) (settled = true), resolvePromise(value);
    };
    const reject = (error: Error): void => {
      if (!settled) (settled = true), rejectPromise(error);
    };
    if (signal.aborted) {
      reject(abortReason(signal));
      return;
    }
    let tree: Tree;
    try {
      tree = startTree(command, args, {
        cwd: options.cwd,
        env: options.env,
        stdio: [options.stdin === null ? "ignore" : "pipe", "pipe", "pipe"],
        graceMs: options.killGraceMs ?? KILL_GRACE_MS_DEFAULT,
      });
    } catch (error) {
      reject(spawnFailure(command, options.cwd, error, "agent CLI not found: is it installed and on PATH?"));
      return;
    }
    const child = tree.child;
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let overflow = false;
    let stderr = "";
    let aborted = false;
    const decoder = options.onStdoutLine === undefined ? null : new StringDecoder("utf8");
    let partial = "";
    const lines = (text: string): void => {
      partial += text;
      let newline = partial.indexOf("\n");
      while (newline !== -1) {
        const line = partial.slice(0, newline).replace(/\r$/, "");
        partial = partial.slice(newline + 1);
        try {
          options.onStdoutLine!(line);
        } catch {
          // A reader's trouble with one line is not the run's: the whole stdout is read again at the end.
        }
        newline = partial.indexOf("\n");
      }
    };

    child.stdout!.on("data", (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > STDOUT_BYTES_MAX) {
        if (!overflow) {
          overflow = true;
          tree.stop();
        }
        return;
      }
      stdout.push(chunk);
      if (decoder !== null) lines(decoder.write(chunk));
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
      tree.stop();
    };
    signal.addEventListener("abort", onAbort, { once: true });

    tree.ended.then(
      ({ code: exitCode, signal: exitSignal }) => {
        signal.removeEventListener("abort", onAbort);
        if (aborted) {
          reject(abortReason(signal));
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
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(spawnFailure(command, options.cwd, error, "agent CLI not found: is it installed and on PATH?"));
      },
    );
  });
}
