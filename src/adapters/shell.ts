import { isAbsolute, resolve, sep } from "node:path";
import { HumanInputRequest } from "./human-input.js";
import { RosterError } from "../errors.js";
import type { Json } from "../store/types.js";
import { spawnFailure, startTree } from "./process-tree.js";
import type { AdapterEnvironment } from "./registry.js";
import type { Adapter, AdapterPersona, AdapterTask } from "./types.js";
import { abortReason } from "./work.js";

/**
 * `shell`: runs `command` with the `args` array (never through a shell, so no
 * argument is ever interpreted). The contract a script sees is written down in
 * docs/shell-adapter.md; in short:
 * - stdin: the task as JSON; environment: ours, the persona's `env`, and ROSTER_*;
 * - stdout: the result (parsed when it is JSON);
 * - stderr: a line `::roster:progress <fraction 0..1> [message]` reports progress
 *   (and is not kept), `::roster:limit {json}` a provider limit for a non-zero exit;
 *   the tail of the rest goes into a failure's message;
 * - exit 0 completes, SHELL_EXIT_NO_RETRY fails the task without a retry, any
 *   other exit (or a signal) fails the attempt, which is retried by policy;
 * - the script and everything it started form one process tree (process-tree.ts)
 *   that ends with the attempt: when the script exits, what it left running gets
 *   SIGTERM and then SIGKILL, and the outcome is reported once it is gone.
 * A relative `cwd`, or a `command` with a path separator, is resolved against the
 * persona file's folder.
 */
/** How much of stderr (its last characters, progress lines left out) a failure's message keeps. */
export const STDERR_TAIL_CHARS = 4_096;
/**
 * How long a process tree gets between SIGTERM and SIGKILL when its attempt ends, in ms.
 * Under the pool's abort grace (ABORT_GRACE_MS_DEFAULT, 2 s) on purpose, as in the agent
 * adapter: an aborted script that ignores SIGTERM is gone before its thread would be terminated.
 */
export const KILL_GRACE_MS = 1_500;
/** The exit code by which a script fails its task for good (no retry); given to it as ROSTER_EXIT_NO_RETRY. sysexits' EX_DATAERR. */
export const SHELL_EXIT_NO_RETRY = 65;
/** Prefix of a question line on stderr: `::roster:ask Which branch?` parks the task for a person's answer (docs/shell-adapter.md). */
export const ASK_PREFIX = "::roster:ask";
/** Prefix of a progress line on stderr: `::roster:progress 0.5 halfway`. */
export const PROGRESS_PREFIX = "::roster:progress";
/** Prefix of a usage line on stderr: `::roster:usage {"model":"gpt-5","inputTokens":1200,"outputTokens":300}`. */
export const USAGE_PREFIX = "::roster:usage";
/**
 * Prefix of a provider-limit line on stderr: `::roster:limit {"failure":"rate-limit","retryAfterMs":30000}`. A
 * non-zero exit after one is a provider limit (docs/shell-adapter.md): given back uncounted, the provider paused.
 */
export const LIMIT_PREFIX = "::roster:limit";
/** A stderr line longer than this without a newline is taken as it is (not as a progress line), in characters. */
const STDERR_LINE_MAX_CHARS = 64 * 1024;

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

/** A progress line's fraction and message, or null when `line` is not a well-formed progress line. */
export function parseProgressLine(line: string): { fraction: number; message?: string } | null {
  if (!line.startsWith(PROGRESS_PREFIX)) return null;
  const rest = line.slice(PROGRESS_PREFIX.length);
  if (rest !== "" && rest[0] !== " " && rest[0] !== "\t") return null;
  const match = /^\s*(\S+)(?:\s+(.*))?$/.exec(rest);
  if (match === null) return null;
  const fraction = Number(match[1]);
  if (match[1] === "" || !Number.isFinite(fraction) || fraction < 0 || fraction > 1) return null;
  const message = match[2]?.trim();
  return message === undefined || message === "" ? { fraction } : { fraction, message };
}

/** A limit line's JSON as the store reads it (src/store/gates.ts providerLimit), or why it is not one. */
export function parseLimitLine(json: string): { failure: "rate-limit" | "usage-limit"; retryAfterMs?: number; resetAt?: number } | string {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    return `not JSON (${(error as Error).message})`;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return "not a JSON object";
  const v = value as { failure?: unknown; retryAfterMs?: unknown; resetAt?: unknown };
  if (v.failure !== "rate-limit" && v.failure !== "usage-limit") return `failure: must be "rate-limit" or "usage-limit", got ${JSON.stringify(v.failure) ?? "nothing"}`;
  const ms = (n: unknown) => typeof n === "number" && Number.isFinite(n) && n >= 0;
  if (v.retryAfterMs !== undefined && !ms(v.retryAfterMs)) return `retryAfterMs: must be a non-negative number of ms, got ${JSON.stringify(v.retryAfterMs)}`;
  if (v.resetAt !== undefined && !ms(v.resetAt)) return `resetAt: must be epoch ms, got ${JSON.stringify(v.resetAt)}`;
  return { failure: v.failure, ...(v.retryAfterMs === undefined ? {} : { retryAfterMs: v.retryAfterMs as number }), ...(v.resetAt === undefined ? {} : { resetAt: v.resetAt as number }) };
}

export interface RunProcessOptions {
  stdin: string;
  env: Record<string, string>;
  signal: AbortSignal;
  maxStdoutBytes: number;
  killGraceMs?: number;
  /** Called for each progress line on stderr. */
  progress?: (fraction: number, message?: string) => void;
  /** Called with the JSON of each `::roster:usage {json}` line on stderr (docs/economics.md). */
  usage?: (usage: unknown) => void;
  /** Told of a line that starts with the progress prefix but is not well formed. */
  warn?: (message: string, data?: Record<string, unknown>) => void;
}

export function runProcess(spec: ShellSpec, options: RunProcessOptions): Promise<Json> {
  return new Promise((resolvePromise, reject) => {
    if (options.signal.aborted) {
      reject(abortReason(options.signal));
      return;
    }
    const tree = startTree(spec.command, spec.args, {
      cwd: spec.cwd,
      // The child inherits the environment (agent CLIs need PATH, HOME …) plus ours.
      env: { ...process.env, ...spec.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
      graceMs: options.killGraceMs ?? KILL_GRACE_MS,
    });
    const child = tree.child;
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderrTail = "";
    let stderrLine = "";
    let failure: Error | null = null;
    const stop = (error: Error): void => {
      if (failure !== null) return;
      failure = error;
      tree.stop();
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
    const keep = (text: string): void => {
      stderrTail = (stderrTail + text).slice(-STDERR_TAIL_CHARS);
    };
    let question: string | null = null;
    let limit: Exclude<ReturnType<typeof parseLimitLine>, string> | null = null;
    const onLine = (line: string, newline: string): void => {
      if (line.startsWith(`${LIMIT_PREFIX} `)) {
        const read = parseLimitLine(line.slice(LIMIT_PREFIX.length));
        if (typeof read !== "string") {
          limit = read;
          return;
        }
        options.warn?.(`${spec.command}: a limit line must be "${LIMIT_PREFIX} {json}": ${read}; kept as stderr`, { line: line.slice(0, 200) });
      }
      if (line.startsWith(`${ASK_PREFIX} `) && line.slice(ASK_PREFIX.length).trim() !== "") {
        question = line.slice(ASK_PREFIX.length).trim();
        return;
      }
      if (line.startsWith(`${USAGE_PREFIX} `) && options.usage !== undefined) {
        try {
          options.usage(JSON.parse(line.slice(USAGE_PREFIX.length)) as unknown);
        } catch (error) {
          options.warn?.(`${spec.command}: a usage line must be "${USAGE_PREFIX} {json usage}": ${(error as Error).message}; ignored`, { line: line.slice(0, 200) });
        }
        return;
      }
      if (line.startsWith(PROGRESS_PREFIX)) {
        const progress = parseProgressLine(line.replace(/\r$/, ""));
        if (progress !== null) {
          options.progress?.(progress.fraction, progress.message);
          return;
        }
        options.warn?.(`${spec.command}: a progress line must be "${PROGRESS_PREFIX} <fraction 0..1> [message]"; kept as stderr`, { line: line.slice(0, 200) });
      }
      keep(line + newline);
    };
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      stderrLine += chunk;
      let newline: number;
      while ((newline = stderrLine.indexOf("\n")) >= 0) {
        onLine(stderrLine.slice(0, newline), "\n");
        stderrLine = stderrLine.slice(newline + 1);
      }
      if (stderrLine.length > STDERR_LINE_MAX_CHARS) {
        keep(stderrLine);
        stderrLine = "";
      }
    });
    // A child that exits without reading stdin makes the write fail with EPIPE; the exit code tells.
    child.stdin!.on("error", () => undefined);
    child.stdin!.end(options.stdin);

    tree.ended.then(
      ({ code, signal }) => {
        options.signal.removeEventListener("abort", onAbort);
        if (stderrLine !== "") onLine(stderrLine, "");
        if (failure !== null) {
          reject(failure);
          return;
        }
        // A question asked: whatever the exit code, the attempt parks for a person's answer.
        if (question !== null) {
          reject(new HumanInputRequest(question));
          return;
        }
        const tail = stderrTail.trim();
        if (code !== 0) {
          // A provider limit reported on stderr: the store gives the attempt back uncounted and pauses the provider.
          const limited: typeof limit = limit;
          const noRetry = code === SHELL_EXIT_NO_RETRY && limited === null;
          const said = limited === null ? (noRetry ? " (no retry)" : "") : ` (${limited.failure}: provider paused, attempt not counted)`;
          const how = code === null ? `was killed by ${signal}` : `exited with code ${code}${said}`;
          reject(
            new RosterError("ADAPTER_FAILED", `${spec.command} ${how}${tail === "" ? "" : `: ${tail}`}`, {
              retryable: !noRetry,
              details: { exitCode: code, signal, stderr: tail, ...(limited ?? {}) },
            }),
          );
          return;
        }
        resolvePromise(parseStdout(Buffer.concat(stdout).toString("utf8")));
      },
      (error: NodeJS.ErrnoException) => {
        options.signal.removeEventListener("abort", onAbort);
        reject(spawnFailure(spec.command, spec.cwd, error, "cannot start: not found or not executable"));
      },
    );
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

/** The ROSTER_* variables a script gets (docs/shell-adapter.md). */
export function taskEnv(task: AdapterTask): Record<string, string> {
  return {
    ROSTER_TASK_ID: String(task.id),
    ROSTER_ATTEMPT: String(task.attempt),
    ROSTER_MAX_ATTEMPTS: String(task.maxAttempts),
    ROSTER_PERSONA: task.persona,
    ROSTER_TIMEOUT_MS: String(task.timeoutMs),
    ROSTER_EXIT_NO_RETRY: String(SHELL_EXIT_NO_RETRY),
  };
}

export function createAdapter(persona: AdapterPersona, env: AdapterEnvironment): Adapter {
  const spec = shellSpec(persona);
  return {
    run(task, ctx) {
      return runProcess(spec, {
        stdin: JSON.stringify(task),
        env: taskEnv(task),
        signal: ctx.signal,
        maxStdoutBytes: env.maxPayloadBytes,
        progress: (fraction, message) => ctx.progress(fraction, message),
        usage: (usage) => ctx.reportUsage?.(usage as never),
        warn: (message, data) => ctx.logger.warn(message, data),
      });
    },
  };
}
