import { RosterError } from "../../errors.js";
import type { Json } from "../../store/types.js";
import type { AgentProfile, JsonlRule, OutputSpec } from "./profiles.js";

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
}

interface Reading {
  answer: string | null;
  error: string | null;
  sessionId: string | null;
  meta: Record<string, Json>;
  /** Why stdout could not be read as the profile says, when it could not. */
  unreadable: string | null;
}

/** Turns a finished run into its answer, or throws a RosterError that says whether to retry. */
export function interpretRun(profile: AgentProfile, run: CliRun): Answer {
  const reading = readOutput(profile.output, run.stdout);
  const failed = run.exitCode !== 0 || reading.error !== null;
  if (!failed && reading.answer !== null) return { text: reading.answer, sessionId: reading.sessionId, meta: reading.meta };
  if (!failed) {
    throw new RosterError("ADAPTER_OUTPUT_INVALID", `${run.command} exited 0 but its output could not be read: ${reading.unreadable}${tailBlock("stdout", run.stdout)}`, {
      details: { exitCode: run.exitCode, stdoutTail: tail(run.stdout) },
    });
  }
  // The CLI's own error report (its JSON, events or text) is evidence too: claude's subtype, codex's error events.
  const evidence = [reading.error ?? "", tail(run.stderr), tail(run.stdout)].join("\n");
  const rateLimited = matchesAny(profile.rateLimitPatterns, evidence);
  const nonRetryable =
    !rateLimited && (matchesAny(profile.nonRetryablePatterns, evidence) || (run.exitCode !== null && profile.nonRetryableExitCodes.includes(run.exitCode)));
  const how = run.exitCode === null ? `was killed by ${run.signal ?? "a signal"}` : `exited with code ${run.exitCode}`;
  const what = reading.error !== null ? `: ${reading.error}` : "";
  const label = rateLimited ? " (rate limited; will retry)" : nonRetryable ? " (not retryable)" : "";
  throw new RosterError("ADAPTER_FAILED", `${run.command} ${how}${label}${what}${tailBlock("stderr", run.stderr)}`, {
    retryable: !nonRetryable,
    details: { exitCode: run.exitCode, signal: run.signal, rateLimited, stderrTail: tail(run.stderr) },
  });
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

function readOutput(spec: OutputSpec, stdout: string): Reading {
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
      return { ...none, unreadable: stdout.trim() === "" ? "stdout is empty" : `stdout is not JSON (${(error as Error).message})` };
    }
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
