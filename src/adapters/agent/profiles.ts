import type { AgentProfileName } from "./options.js";

/**
 * Agent CLI profiles, as data. A profile says how to launch a CLI the way a person
 * runs it non-interactively, how the prompt reaches it, where the answer is in its
 * output, and which failures are worth retrying. A new CLI is one more entry here
 * (or a `custom` persona that fills the same fields from its front matter).
 *
 * Argument templates: an element that is exactly "{prompt}" or "{model}" is
 * replaced by the value, whole; nothing is ever interpolated into a shell string.
 */

/** Picks a JSONL line whose fields (dotted paths) equal the given strings; reads `path` from it. */
export interface JsonlRule {
  match: Record<string, string>;
  path: string;
}

export type OutputSpec =
  | {
      format: "json";
      /** Dotted path of the answer. */
      result: string;
      /** The run failed even though it printed JSON: this path is truthy. */
      errorWhen?: string;
      /** Where the error's message is (falls back to `result`). */
      errorMessage?: string;
      /** Session / thread id, kept in the task result. */
      session?: string;
      /** Extra fields kept in the task result: name → dotted path. */
      meta?: Record<string, string>;
    }
  | {
      format: "jsonl";
      /** The answer: the last line matching the rule. */
      result: JsonlRule;
      /** A line matching any of these means the run failed; the path holds its message. */
      errors: JsonlRule[];
      session?: JsonlRule;
    }
  | { format: "text" };

export interface AgentProfile {
  /** Executable, looked up on PATH unless the persona gives `command`. */
  command: string;
  /** Non-interactive argv (before the persona's own `args`). */
  args: string[];
  /** Appended when the persona sets `model`. */
  modelArgs: string[];
  /** "argument": the prompt is the last argv element unless `args` holds "{prompt}". */
  prompt: "stdin" | "argument";
  /** Argument that precedes the prompt when it is passed as an argument (e.g. gemini's `--prompt`). */
  promptFlag?: string;
  output: OutputSpec;
  /** Case-insensitive regex sources; matched on the failure's message, stdout tail and stderr tail. */
  rateLimitPatterns: string[];
  nonRetryablePatterns: string[];
  nonRetryableExitCodes: number[];
}

/** Rate limits and overload: every hosted model API says it some way like these. */
const COMMON_RATE_LIMIT = ["rate[ _-]?limit", "too many requests", "\\b429\\b", "overloaded", "\\b529\\b", "quota exceeded", "resource[ _]exhausted"];

export const PROFILES: Record<AgentProfileName, AgentProfile> = {
  /** Claude Code: `claude -p --output-format json`, prompt on stdin. */
  claude: {
    command: "claude",
    args: ["-p", "--output-format", "json"],
    modelArgs: ["--model", "{model}"],
    prompt: "stdin",
    output: {
      format: "json",
      result: "result",
      errorWhen: "is_error",
      errorMessage: "result",
      session: "session_id",
      meta: { costUsd: "total_cost_usd", numTurns: "num_turns", durationMs: "duration_ms", subtype: "subtype" },
    },
    rateLimitPatterns: [...COMMON_RATE_LIMIT, "usage limit reached", "\\blimit reached\\b"],
    nonRetryablePatterns: ["invalid api key", "please run /login", "authentication_error", "credit balance is too low", "error_max_turns"],
    nonRetryableExitCodes: [],
  },
  /** Codex CLI: `codex exec --json -` (prompt on stdin), JSONL events on stdout. */
  codex: {
    command: "codex",
    args: ["exec", "--json"],
    modelArgs: ["--model", "{model}"],
    prompt: "stdin",
    output: {
      format: "jsonl",
      result: { match: { type: "item.completed", "item.type": "agent_message" }, path: "item.text" },
      errors: [
        { match: { type: "turn.failed" }, path: "error.message" },
        { match: { type: "error" }, path: "message" },
      ],
      session: { match: { type: "thread.started" }, path: "thread_id" },
    },
    rateLimitPatterns: [...COMMON_RATE_LIMIT, "usage limit"],
    // Outside a git repository codex refuses to run unless told --skip-git-repo-check; retrying cannot help.
    nonRetryablePatterns: ["not logged in", "invalid api key", "unauthorized", "\\b401\\b", "skip-git-repo-check"],
    nonRetryableExitCodes: [],
  },
  /** Gemini CLI: `gemini --output-format json --prompt PROMPT`; exit 42 is bad input, 53 the turn limit. */
  gemini: {
    command: "gemini",
    args: ["--output-format", "json"],
    modelArgs: ["--model", "{model}"],
    prompt: "argument",
    promptFlag: "--prompt",
    output: { format: "json", result: "response", errorWhen: "error", errorMessage: "error.message", meta: { stats: "stats" } },
    rateLimitPatterns: COMMON_RATE_LIMIT,
    nonRetryablePatterns: ["api key not valid", "permission[ _]denied", "unauthenticated"],
    nonRetryableExitCodes: [42, 53],
  },
  /** Anything else: the persona gives command, args, promptVia, output and resultPath. */
  custom: {
    command: "",
    args: [],
    modelArgs: [],
    prompt: "stdin",
    output: { format: "text" },
    rateLimitPatterns: COMMON_RATE_LIMIT,
    nonRetryablePatterns: [],
    nonRetryableExitCodes: [],
  },
};
