import { isAbsolute, resolve, sep } from "node:path";
import { RosterError } from "../errors.js";
import type { Json } from "../store/types.js";
import { killTree, spawnTree } from "./process-tree.js";
import type { AdapterEnvironment } from "./registry.js";
import type { Adapter, AdapterPersona, AdapterTask } from "./types.js";
import { abortReason } from "./work.js";

/**
 * `shell`: runs `command` with the `args` array (never through a shell, so no
 * argument is ever interpreted), writes the task as JSON to its stdin, and sets
 * ROSTER_TASK_ID, ROSTER_ATTEMPT and ROSTER_PERSONA plus the persona's `env`.
 * stdout is the result (parsed when it is JSON); a non-zero exit fails the attempt
 * with the tail of stderr; abort ends the process and every process it started.
 * A relative `cwd`, or a `command` with a path separator, is resolved against the
 * persona file's folder.
 */
export const STDERR_TAIL_BYTES = 4_096;
/** How long a process tree gets between SIGTERM and SIGKILL after an abort, in ms. */
export const KILL_GRACE_MS = 2_000;

export interface ShellSpec {
  command: string;
  args: string[];
  cwd?: string | undefined;
  env?: Record<string, string> | undefined;
}

export function parseStdout(text: string): Json {
  const trimmed = text.trim();
  if (trimmed === "") return null;
  try {
    return JSON.parse(trimmed) as Json;
  } catch {
    return text;
  }
}

export function runProcess(
  spec: ShellSpec,
  options: { stdin: string; env: Record<string, string>; signal: AbortSignal; maxStdoutBytes: number; killGraceMs?: number },
): Promise<Json> {
  return new Promise((resolvePromise, reject) => {
    if (options.signal.aborted) {
      reject(abortReason(options.signal));
      return;
    }
    const child = spawnTree(spec.command, spec.args, {
      cwd: spec.cwd,
      // The child inherits the environment (agent CLIs need PATH, HOME …) plus ours.
      env: { ...process.env, ...spec.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderrTail = Buffer.alloc(0);
    let failure: Error | null = null;
    let killTimer: NodeJS.Timeout | null = null;
    const stop = (error: Error): void => {
      if (failure !== null) return;
      failure = error;
      killTree(child, "SIGTERM");
      killTimer = setTimeout(() => killTree(child, "SIGKILL"), options.killGraceMs ?? KILL_GRACE_MS);
      killTimer.unref();
    };
    const onAbort = (): void => stop(abortReason(options.signal));
    options.signal.addEventListener("abort", onAbort, { once: true });

    child.stdout!.on("data", (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > options.maxStdoutBytes) {
        stop(new RosterError("ADAPTER_OUTPUT_INVALID", `${spec.command}: stdout is over the limit of ${options.maxStdoutBytes} bytes`, { retryable: false }));
        return;
      }
      stdout.push(chunk);
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      stderrTail = Buffer.concat([stderrTail, chunk]);
      if (stderrTail.length > STDERR_TAIL_BYTES) stderrTail = stderrTail.subarray(stderrTail.length - STDERR_TAIL_BYTES);
    });
    // A child that exits without reading stdin makes the write fail with EPIPE; the exit code tells.
    child.stdin!.on("error", () => undefined);
    child.stdin!.end(options.stdin);

    child.on("error", (error: NodeJS.ErrnoException) => {
      options.signal.removeEventListener("abort", onAbort);
      const notFound = error.code === "ENOENT" || error.code === "EACCES";
      reject(
        new RosterError(notFound ? "ADAPTER_NOT_FOUND" : "ADAPTER_FAILED", `${spec.command}: cannot start (${error.message})`, {
          retryable: !notFound,
          cause: error,
        }),
      );
    });
    child.on("close", (code, signal) => {
      options.signal.removeEventListener("abort", onAbort);
      if (killTimer !== null) clearTimeout(killTimer);
      if (failure !== null) {
        // Make sure nothing of the tree outlives an abort.
        killTree(child, "SIGKILL");
        reject(failure);
        return;
      }
      const tail = stderrTail.toString("utf8").trim();
      if (code !== 0) {
        const how = code === null ? `was killed by ${signal}` : `exited with code ${code}`;
        reject(new RosterError("ADAPTER_FAILED", `${spec.command} ${how}${tail === "" ? "" : `: ${tail}`}`, { details: { exitCode: code, signal, stderr: tail } }));
        return;
      }
      resolvePromise(parseStdout(Buffer.concat(stdout).toString("utf8")));
    });
  });
}

export function shellSpec(persona: AdapterPersona): ShellSpec {
  const adapter = persona.adapter;
  if (adapter.kind !== "shell") throw new RosterError("ADAPTER_NOT_FOUND", `persona "${persona.id}" does not use a shell adapter`, { retryable: false });
  const base = persona.dir ?? process.cwd();
  const hasSeparator = adapter.command.includes("/") || adapter.command.includes(sep);
  return {
    command: hasSeparator && !isAbsolute(adapter.command) ? resolve(base, adapter.command) : adapter.command,
    args: adapter.args ?? [],
    cwd: adapter.cwd === undefined ? undefined : resolve(base, adapter.cwd),
    env: adapter.env,
  };
}

export function taskEnv(task: AdapterTask): Record<string, string> {
  return { ROSTER_TASK_ID: String(task.id), ROSTER_ATTEMPT: String(task.attempt), ROSTER_PERSONA: task.persona };
}

export function createAdapter(persona: AdapterPersona, env: AdapterEnvironment): Adapter {
  const spec = shellSpec(persona);
  return {
    run(task, ctx) {
      return runProcess(spec, { stdin: JSON.stringify(task), env: taskEnv(task), signal: ctx.signal, maxStdoutBytes: env.maxPayloadBytes });
    },
  };
}
