import type { Json } from "../../store/types.js";
import type { AgentDialect } from "./profiles.js";
import { jsonLines } from "./usage.js";

/**
 * Failure classes of the real agent CLIs, read from what each prints (measured on
 * Claude Code 2.1.197, Codex 0.171.0 and Gemini CLI 0.61.0 against a scripted model
 * server; see docs/agent-clis.md):
 *
 * | class | retryable | carries |
 * | --- | --- | --- |
 * | `auth` (401/403, a rejected key) | no | the variable that holds the key |
 * | `rate-limit` (429, 529) | yes | `retryAfterMs` when the CLI says it (Gemini) |
 * | `usage-limit` (a plan's or a day's quota) | yes, after a provider pause | `resetAt`, epoch ms, when the CLI says it |
 * | `server` (5xx) | yes | |
 * | `unreachable` (connection refused, DNS) | yes | |
 * | `permission-denied` (a tool the CLI's permissions refused) | no | `tool` |
 *
 * Each CLI reports these its own way: Claude Code in its result JSON
 * (`api_error_status`, `result`, `permission_denials`, with exit 0 for denials),
 * Codex in `error` / `turn.failed` events (denials only as an ERROR log line on
 * stderr), Gemini in a JSON document on stderr with the HTTP status as exit code.
 */
export const FAILURE_KINDS = ["auth", "rate-limit", "usage-limit", "server", "unreachable", "permission-denied"] as const;
export type FailureKind = (typeof FAILURE_KINDS)[number];

export interface Failure {
  kind: FailureKind;
  retryable: boolean;
  /** The CLI's own words. */
  message: string;
  retryAfterMs?: number;
  resetAt?: number;
  tool?: string;
}

export interface FailureInput {
  dialect: AgentDialect | null;
  stdout: string;
  stderr: string;
  /** The error the output reader found (result text, error event, error JSON), if any. */
  error: string | null;
  /** The variable holding the API key, named in authentication failures. */
  keyVar: string | null;
  now: number;
}

/** A tool the CLI's permissions refused, even in a run that otherwise ended well; null when none. */
export function permissionDenial(input: Pick<FailureInput, "dialect" | "stdout" | "stderr">): Failure | null {
  const deny = (tool: string, message: string): Failure => ({ kind: "permission-denied", retryable: false, tool, message });
  if (input.dialect === "claude") {
    const doc = resultDoc(input.stdout);
    const denials = doc?.permission_denials;
    if (Array.isArray(denials) && denials.length > 0) {
      const tools = [...new Set(denials.map((d) => (isObject(d) && typeof d.tool_name === "string" ? d.tool_name : "?")))];
      return deny(tools.join(", "), `permission denied for ${tools.join(", ")} (${denials.length} call${denials.length === 1 ? "" : "s"} refused; see the persona's --permission-mode / --allowedTools)`);
    }
  } else if (input.dialect === "codex") {
    const m = /error=(\w+) rejected: ([^\n]*)/.exec(input.stderr);
    if (m !== null) return deny(m[1] === "patch" ? "apply_patch" : "exec_command", `${m[1]} rejected: ${m[2]!.trim()} (see the persona's --sandbox)`);
  } else if (input.dialect === "gemini") {
    const m = /Error executing tool (\w+): (Tool "[^"]+" not found[^\n]*|[^\n]*(?:denied|not allowed)[^\n]*)/i.exec(input.stderr);
    if (m !== null) return deny(m[1]!, `${m[1]} was refused: ${m[2]!.trim()} (write tools are offered only under --approval-mode auto_edit or yolo)`);
  }
  return null;
}

/** The class of a failed run, or null when its output does not say (the caller's generic rules apply). */
export function classifyFailure(input: FailureInput): Failure | null {
  const denial = permissionDenial(input);
  if (input.dialect === null) return null;
  const text = [input.error ?? "", input.dialect === "codex" ? codexErrors(input.stdout) : "", tailOf(input.stderr)].join("\n");
  const message = (input.error ?? firstLine(text)).trim();
  const status = httpStatus(input);
  const auth = (): Failure => ({
    kind: "auth",
    retryable: false,
    message: `${message} (authentication failed${input.keyVar === null ? "" : `: check the key in ${input.keyVar}`})`,
  });

  if (status === 401 || status === 403 || /invalid api key|incorrect api key|invalid_api_key|api key not valid|api_key_invalid|authentication_error|unauthenticated|please run \/login|\b401 unauthorized/i.test(text)) return auth();

  const usageLimit = usageLimitOf(input.dialect, text, input.now);
  if (usageLimit !== null) return { ...usageLimit, message };

  if (status === 429 || status === 529 || /\b429\b|too many requests|rate[ _-]?limit|resource_exhausted|overloaded/i.test(text)) {
    const after = retryAfterMs(text);
    return { kind: "rate-limit", retryable: true, message, ...(after === null ? {} : { retryAfterMs: after }) };
  }
  if ((status !== null && status >= 500) || /\b5\d\d\b|internal server error|server_error|high demand|"status":\s*"INTERNAL"/i.test(text)) {
    return { kind: "server", retryable: true, message };
  }
  if (/unable to connect|connectionrefused|econnrefused|enotfound|eai_again|fetch failed|connection failed|error sending request|waiting for network|econnreset/i.test(text)) {
    return { kind: "unreachable", retryable: true, message };
  }
  return denial;
}

/** A plan's or a day's quota, with when it resets where that can be known. */
function usageLimitOf(dialect: AgentDialect, text: string, now: number): Omit<Failure, "message"> | null {
  // Claude Code (subscription): "Claude AI usage limit reached|<epoch seconds>".
  const claude = /usage limit reached\|(\d{9,13})/i.exec(text);
  if (claude !== null) return limit(Number(claude[1]) < 1e12 ? Number(claude[1]) * 1000 : Number(claude[1]), now);
  // Codex: "You've hit your usage limit. … try again at Dec 7th, 2025 9:33 AM." (or "at 7:48 PM"), local time.
  if (/hit your usage limit/i.test(text)) {
    const at = /try again at ([^\n"]+?)\.?(?:["\n]|$)/i.exec(text);
    return limit(at === null ? null : localTime(at[1]!, now), now);
  }
  if (dialect === "codex" && /usage_not_included|quota exceeded|insufficient_quota/i.test(text)) return limit(null, now);
  // Gemini: a per-day quota ("exhausted your daily quota"), which resets at midnight Pacific time.
  if (/exhausted your daily quota|terminalquotaerror/i.test(text)) return limit(nextPacificMidnight(now), now);
  return null;
}

/** Retryable either way: the store pauses the provider until `resetAt`, or 30 min when unknown (docs/economics.md). */
function limit(resetAt: number | null, now: number): Omit<Failure, "message"> {
  return resetAt === null
    ? { kind: "usage-limit", retryable: true }
    : { kind: "usage-limit", retryable: true, resetAt, retryAfterMs: Math.max(0, resetAt - now) };
}

/** "Suggested retry after 7s", "try again in 20s", "Please retry in 1.5 seconds", "retry after 250ms". */
export function retryAfterMs(text: string): number | null {
  const m = /(?:retry after|try again in|retry in)\s+(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|sec|seconds?|m|min|minutes?)\b/i.exec(text);
  if (m === null) return null;
  const n = Number(m[1]);
  const unit = m[2]!.toLowerCase();
  return Math.round(unit.startsWith("ms") || unit.startsWith("milli") ? n : unit.startsWith("m") && !unit.startsWith("ms") ? n * 60_000 : n * 1000);
}

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/** Codex's local-time reset ("Dec 7th, 2025 9:33 AM", "7:48 PM") as epoch ms; null when unreadable. */
export function localTime(text: string, now: number): number | null {
  const time = /(\d{1,2}):(\d{2})\s*([AP]M)?/i.exec(text);
  if (time === null) return null;
  let hours = Number(time[1]) % 12;
  if (time[3] === undefined) hours = Number(time[1]);
  else if (time[3].toUpperCase() === "PM") hours += 12;
  const date = /([A-Za-z]{3})[a-z]*\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})/.exec(text);
  const base = new Date(now);
  const at =
    date === null
      ? new Date(base.getFullYear(), base.getMonth(), base.getDate(), hours, Number(time[2]))
      : new Date(Number(date[3]), MONTHS.indexOf(date[1]!.slice(0, 3).toLowerCase()), Number(date[2]), hours, Number(time[2]));
  if (Number.isNaN(at.getTime()) || (date !== null && MONTHS.indexOf(date[1]!.slice(0, 3).toLowerCase()) < 0)) return null;
  // A bare time well past means tomorrow; within the last minute it is now (Codex shows the reset to the minute).
  if (date === null && at.getTime() < now - 60_000) at.setDate(at.getDate() + 1);
  return at.getTime();
}

/** The next midnight in America/Los_Angeles after `now`, epoch ms. */
export function nextPacificMidnight(now: number): number {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", { timeZone: "America/Los_Angeles", hourCycle: "h23", hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .formatToParts(new Date(now))
      .map((p) => [p.type, p.value]),
  );
  const sinceMidnightMs = ((Number(parts.hour) * 60 + Number(parts.minute)) * 60 + Number(parts.second)) * 1000 + (now % 1000);
  return now - sinceMidnightMs + 86_400_000;
}

/** The HTTP status the CLI reported: Claude's api_error_status, Gemini's error JSON code. */
function httpStatus(input: FailureInput): number | null {
  if (input.dialect === "claude") {
    const status = resultDoc(input.stdout)?.api_error_status;
    return typeof status === "number" ? status : null;
  }
  if (input.dialect === "gemini") {
    const code = trailingJson(input.stderr)?.error;
    const value = isObject(code) ? code.code : undefined;
    return typeof value === "number" && value >= 100 && value < 600 ? value : null;
  }
  return null;
}

function codexErrors(stdout: string): string {
  return jsonLines(stdout)
    .map((l) => (l.type === "error" && typeof l.message === "string" ? l.message : l.type === "turn.failed" && isObject(l.error) && typeof l.error.message === "string" ? l.error.message : null))
    .filter((m): m is string => m !== null)
    .join("\n");
}

function resultDoc(stdout: string): { [key: string]: Json } | null {
  try {
    const doc = JSON.parse(stdout) as Json;
    if (isObject(doc)) return doc;
    // `--output-format json --verbose`: every event in one array.
    if (Array.isArray(doc)) return [...doc].reverse().find((d): d is { [key: string]: Json } => isObject(d) && d.type === "result") ?? null;
  } catch {
    // stream-json: the result is the last line of its type.
  }
  const lines = jsonLines(stdout).filter((l) => l.type === "result");
  return lines[lines.length - 1] ?? null;
}

/** The JSON document at the end of a stream (Gemini prints its error JSON after its log lines). */
export function trailingJson(text: string): { [key: string]: Json } | null {
  const trimmed = text.trimEnd();
  if (!trimmed.endsWith("}")) return null;
  // Candidate starts: every line that begins with "{", last first.
  const starts = [...trimmed.matchAll(/(^|\n)\{/g)].map((m) => m.index + m[1]!.length).reverse();
  for (const start of starts) {
    try {
      const doc = JSON.parse(trimmed.slice(start)) as Json;
      if (isObject(doc)) return doc;
    } catch {
      // Not the start of the document yet: look further back.
      continue;
    }
  }
  return null;
}

function isObject(value: Json | undefined): value is { [key: string]: Json } {
  return value !== null && value !== undefined && typeof value === "object" && !Array.isArray(value);
}

function tailOf(text: string): string {
  return text.length <= 8_000 ? text : text.slice(-8_000);
}

function firstLine(text: string): string {
  return text.split("\n").find((l) => l.trim() !== "") ?? "";
}
