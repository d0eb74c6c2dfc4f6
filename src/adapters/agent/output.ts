import { RosterError } from "../../errors.js";
import type { Json } from "../../store/types.js";
import { classifyFailure, permissionDenial, retryAfterMs, trailingJson, type Failure } from "./failures.js";
import type { AgentProfile, JsonlRule, OutputSpec } from "./profiles.js";
import type { NormalUsage } from "../../store/usage-values.js";
import { readUsage, usageJson } from "./usage.js";

/**
 * Reading what an agent CLI printed: the answer (by the profile's output spec) on
 * success, or a failure classified as retryable (rate limits, crashes) or not
 * (bad credentials, bad usage, a profile's non-retryable exit codes).
 */

/** How much of stderr (and of unparsable stdout) a failure carries, in characters. */
export const OUTPUT_TAIL_CHARS = 4_000;

export interface CliRun {
  command: string;
  exitCode: number | null;
  /** Set when the process was ended by a signal. */
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface Answer {
  text: string;
  sessionId: string | null;
  meta: Record<string, Json>;
  /** What the run spent, as the CLI reported it (./usage.ts); null when it reported nothing. */
  usage: NormalUsage | null;
}

export interface InterpretOptions {
  /** The variable holding the API key, named in an authentication failure. */
  keyVar?: string | null;
  /** Now, epoch ms (for reset times given as "in N s" or as a local time). */
  now?: number;
  /** The model the persona asked for, when the output does not name one (codex). */
  model?: string | null;
}

interface Reading {
  answer: string | null;
  error: string | null;
  sessionId: string | null;
  meta: Record<string, Json>;
  /** Why stdout could not be read as the profile says, when it could not. */
  unreadable: string | null;
}

/**
 * Turns a finished run into its answer, or throws a RosterError that says whether to
 * retry. A failure the CLI's own output classifies (./failures.ts) carries its class in
 * `details.failure` (`auth`, `rate-limit`, `usage-limit`, `server`, `unreachable`,
 * `permission-denied`) with `retryAfterMs`, `resetAt` or `tool`; either way the
 * details carry the run's usage when it reported any.
 */
export function interpretRun(profile: AgentProfile, run: CliRun, options: InterpretOptions = {}): Answer {
  const reading = readOutput(profile.output, run.stdout, run.stderr);
  try {
    return interpretReading(profile, run, reading, options);
  } catch (error) {
    // A failed run's session is what its next attempt resumes (./resume.ts): it goes with the error.
    if (error instanceof RosterError && reading.sessionId !== null && error.details !== undefined) error.details.sessionId = reading.sessionId;
    throw error;
  }
}

function interpretReading(profile: AgentProfile, run: CliRun, reading: Reading, options: InterpretOptions): Answer {
  const read = readUsage(profile.dialect, run.stdout);
  const usage = read === null ? null : { ...read, model: read.model ?? options.model ?? null };
  const failed = run.exitCode !== 0 || reading.error !== null;
  if (!failed && reading.answer !== null) {
    // Claude Code exits 0 with its refused tool calls listed; Codex and Gemini log them: the task was not done.
    const denial = permissionDenial({ dialect: profile.dialect, stdout: run.stdout, stderr: run.stderr });
    if (denial !== null) throw classifiedError(run, denial, usage);
    return { text: reading.answer, sessionId: reading.sessionId, meta: reading.meta, usage };
  }
  if (!failed) {
    throw new RosterError("ADAPTER_OUTPUT_INVALID", `${run.command} exited 0 but its output could not be read: ${reading.unreadable}${tailBlock("stdout", run.stdout)}`, {
      details: { exitCode: run.exitCode, stdoutTail: tail(run.stdout), ...(usage === null ? {} : { usage: usageJson(usage) }) },
    });
  }
  const classified = classifyFailure({
    dialect: profile.dialect,
    stdout: run.stdout,
    stderr: run.stderr,
    error: reading.error,
    keyVar: options.keyVar ?? profile.keyEnv,
    now: options.now ?? Date.now(),
  });
  if (classified !== null) throw classifiedError(run, classified, usage);
  // The CLI's own error report (its JSON, events or text) is evidence too: claude's subtype, codex's error events.
  const evidence = [reading.error ?? "", tail(run.stderr), tail(run.stdout)].join("\n");
  const rateLimited = matchesAny(profile.rateLimitPatterns, evidence);
  const nonRetryable =
    !rateLimited && (matchesAny(profile.nonRetryablePatterns, evidence) || (run.exitCode !== null && profile.nonRetryableExitCodes.includes(run.exitCode)));
  // A rate limit any profile's patterns recognise is a provider limit like the known CLIs' (docs/economics.md,
  // "Provider limits"): given back uncounted, the provider paused for the retry-after the output gives.
  if (rateLimited) {
    const after = retryAfterMs(evidence);
    const message = (reading.error ?? firstLine(run.stderr) ?? firstLine(run.stdout) ?? "rate limited").trim();
    throw classifiedError(run, { kind: "rate-limit", retryable: true, message, ...(after === null ? {} : { retryAfterMs: after }) }, usage);
  }
  const what = reading.error !== null ? `: ${reading.error}` : "";
  const label = nonRetryable ? " (not retryable)" : "";
  throw new RosterError("ADAPTER_FAILED", `${run.command} ${how(run)}${label}${what}${tailBlock("stderr", run.stderr)}`, {
    retryable: !nonRetryable,
    details: { exitCode: run.exitCode, signal: run.signal, rateLimited, stderrTail: tail(run.stderr), ...(usage === null ? {} : { usage: usageJson(usage) }) },
  });
}

/** What the supervisor does with each class (docs/agent-clis.md, "Failures"), said in the error's message. */
const FAILURE_LABELS: Record<Failure["kind"], string> = {
  auth: "authentication failed; not retryable",
  "rate-limit": "rate limited",
  "usage-limit": "usage limit reached",
  server: "server error; will retry",
  unreachable: "model API unreachable; will retry",
  "permission-denied": "permission denied; not retryable",
};

/** A provider limit is given back uncounted and pauses the persona's provider account (docs/economics.md), whatever the CLI. */
const PROVIDER_PAUSE = "provider paused, attempt not counted";

function classifiedError(run: CliRun, failure: Failure, usage: NormalUsage | null): RosterError {
  const label =
    failure.kind === "usage-limit"
      ? `${FAILURE_LABELS["usage-limit"]}; ${failure.resetAt === undefined ? "no reset time given" : `resets at ${new Date(failure.resetAt).toISOString()}`}: ${PROVIDER_PAUSE}`
      : failure.kind === "rate-limit"
        ? `${FAILURE_LABELS["rate-limit"]}${failure.retryAfterMs === undefined ? "" : `; retry after ${seconds(failure.retryAfterMs)}`}: ${PROVIDER_PAUSE}`
        : FAILURE_LABELS[failure.kind];
  return new RosterError("ADAPTER_FAILED", `${run.command} ${how(run)} (${label}): ${failure.message}${tailBlock("stderr", run.stderr)}`, {
    retryable: failure.retryable,
    details: {
      exitCode: run.exitCode,
      signal: run.signal,
      failure: failure.kind,
      rateLimited: failure.kind === "rate-limit" || failure.kind === "usage-limit",
      ...(failure.retryAfterMs === undefined ? {} : { retryAfterMs: failure.retryAfterMs }),
      ...(failure.resetAt === undefined ? {} : { resetAt: failure.resetAt }),
      ...(failure.tool === undefined ? {} : { tool: failure.tool }),
      stderrTail: tail(run.stderr),
      ...(usage === null ? {} : { usage: usageJson(usage) }),
    },
  });
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

function firstLine(text: string): string | undefined {
  return text.split("\n").find((l) => l.trim() !== "");
}

function how(run: CliRun): string {
  return run.exitCode === null ? `was killed by ${run.signal ?? "a signal"}` : `exited with code ${run.exitCode}`;
}

export function tail(text: string, chars = OUTPUT_TAIL_CHARS): string {
  const trimmed = text.trimEnd();
  return trimmed.length <= chars ? trimmed : `…${trimmed.slice(-chars)}`;
}

function tailBlock(name: string, text: string): string {
  const t = tail(text);
  return t === "" ? "" : `\n--- ${name} (last ${OUTPUT_TAIL_CHARS} characters at most) ---\n${t}`;
}

function matchesAny(patterns: string[], text: string): boolean {
  return patterns.some((source) => new RegExp(source, "i").test(text));
}

function readOutput(spec: OutputSpec, stdout: string, stderr: string): Reading {
  const none: Reading = { answer: null, error: null, sessionId: null, meta: {}, unreadable: null };
  if (spec.format === "text") {
    const text = stdout.trim();
    return text === "" ? { ...none, unreadable: "stdout is empty" } : { ...none, answer: text };
  }
  if (spec.format === "json") {
    let doc: Json;
    try {
      doc = JSON.parse(stdout) as Json;
    } catch (error) {
      // Gemini prints its error JSON on stderr, after its log lines; Claude's stream-json ends with its document as a line.
      const fallback = spec.lines !== undefined ? lastLine(stdout, spec.lines) : spec.errorOnStderr === true ? trailingJson(stderr) : null;
      if (fallback === null) return { ...none, unreadable: stdout.trim() === "" ? "stdout is empty" : `stdout is not JSON (${(error as Error).message})` };
      doc = fallback;
    }
    // `--output-format json` with `--verbose` (a persona's own args over claude's stream-json) prints every event as one array.
    if (Array.isArray(doc) && spec.lines !== undefined) doc = lastMatching(doc, spec.lines) ?? doc;
    const meta: Record<string, Json> = {};
    for (const [name, path] of Object.entries(spec.meta ?? {})) {
      const value = getPath(doc, path);
      if (value !== undefined) meta[name] = value;
    }
    const sessionId = spec.session === undefined ? null : asText(getPath(doc, spec.session));
    const errorFlag = spec.errorWhen === undefined ? undefined : getPath(doc, spec.errorWhen);
    if (errorFlag !== undefined && errorFlag !== null && errorFlag !== false) {
      const stated = asText(getPath(doc, spec.errorMessage ?? spec.result)) ?? asText(errorFlag);
      const message = stated !== null && stated.trim() !== "" && stated !== "true" ? stated : tail(JSON.stringify(doc), 500);
      return { ...none, error: message, sessionId, meta };
    }
    const answer = asText(getPath(doc, spec.result));
    return answer === null ? { ...none, sessionId, meta, unreadable: `no text at "${spec.result}" in the JSON` } : { ...none, answer, sessionId, meta };
  }
  const lines: Json[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    if (line.trim() === "") continue;
    try {
      lines.push(JSON.parse(line) as Json);
    } catch {
      // CLIs interleave the odd non-JSON line (warnings); they are not events, so they are skipped.
      continue;
    }
  }
  if (lines.length === 0) return { ...none, unreadable: "stdout holds no JSON lines" };
  const last = (rule: JsonlRule): string | null => {
    for (let i = lines.length - 1; i >= 0; i--) {
      const line = lines[i]!;
      if (!Object.entries(rule.match).every(([path, want]) => getPath(line, path) === want)) continue;
      const value = asText(getPath(line, rule.path));
      if (value !== null) return value;
    }
    return null;
  };
  const sessionId = spec.session === undefined ? null : last(spec.session);
  for (const rule of spec.errors) {
    const error = last(rule);
    if (error !== null) return { ...none, error, sessionId };
  }
  const answer = last(spec.result);
  return answer === null ? { ...none, sessionId, unreadable: `no JSON line holds the answer at "${spec.result.path}"` } : { ...none, answer, sessionId };
}

/** The last JSON line of a stream whose fields (dotted paths) equal `match`, or null. */
function lastLine(stdout: string, match: Record<string, string>): Json | null {
  const lines = stdout.split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (!line.startsWith("{")) continue;
    let doc: Json;
    try {
      doc = JSON.parse(line) as Json;
    } catch {
      // Not an event (a warning line): skipped.
      continue;
    }
    if (Object.entries(match).every(([path, want]) => getPath(doc, path) === want)) return doc;
  }
  return null;
}

function lastMatching(docs: Json[], match: Record<string, string>): Json | null {
  for (let i = docs.length - 1; i >= 0; i--) if (Object.entries(match).every(([path, want]) => getPath(docs[i]!, path) === want)) return docs[i]!;
  return null;
}

/** Reads a dotted path ("item.text", "error.message") from parsed JSON. */
export function getPath(value: Json, path: string): Json | undefined {
  let current: Json | undefined = value;
  for (const key of path.split(".")) {
    if (current === null || current === undefined || typeof current !== "object" || Array.isArray(current)) return undefined;
    current = current[key];
  }
  return current;
}

function asText(value: Json | undefined): string | null {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return null;
}
