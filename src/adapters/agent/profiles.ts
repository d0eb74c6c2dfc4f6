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
      /** On failure the JSON document may be the last thing on stderr instead (gemini). */
      errorOnStderr?: boolean;
      /** When stdout is JSON lines (a stream), the document is the last line whose fields equal these (claude's stream-json `result`). */
      lines?: Record<string, string>;
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
  /** Set in the CLI's environment before the persona's `env` (which may override them). */
  env: Record<string, string>;
  /**
   * Flags that let the CLI work unattended in its worktree, each group left out when the persona's
   * `args` already hold its first element (so a planner's `--permission-mode plan` wins).
   */
  permissionArgs: string[][];
  /** The variable the CLI reads its API key from: where `apiKeyEnv`'s value goes, and what an authentication failure names. */
  keyEnv: string | null;
  /** The variable the CLI reads its base URL from (null: set another way, or not at all). */
  baseUrlEnv: string | null;
  /** Whose output shapes the usage and failure readers know (./usage.ts, ./failures.ts); null: none. */
  dialect: AgentDialect | null;
}

export type AgentDialect = "claude" | "codex" | "gemini";

/** Rate limits and overload: every hosted model API says it some way like these. */
const COMMON_RATE_LIMIT = ["rate[ _-]?limit", "too many requests", "\\b429\\b", "overloaded", "\\b529\\b", "quota exceeded", "resource[ _]exhausted"];

export const PROFILES: Record<AgentProfileName, AgentProfile> = {
  /**
   * Claude Code: `claude -p --output-format stream-json --verbose --permission-mode acceptEdits`, prompt on
   * stdin: one JSON event per line as it works (usage per model reply, ./stream-usage.ts), the answer in
   * the last `result` event (the document `--output-format json` prints alone). stream-json needs --verbose.
   */
  claude: {
    command: "claude",
    args: ["-p", "--output-format", "stream-json", "--verbose"],
    modelArgs: ["--model", "{model}"],
    prompt: "stdin",
    output: {
      format: "json",
      result: "result",
      errorWhen: "is_error",
      errorMessage: "result",
      session: "session_id",
      meta: { costUsd: "total_cost_usd", numTurns: "num_turns", durationMs: "duration_ms", subtype: "subtype" },
      lines: { type: "result" },
    },
    rateLimitPatterns: [...COMMON_RATE_LIMIT, "usage limit reached", "\\blimit reached\\b"],
    nonRetryablePatterns: ["invalid api key", "please run /login", "authentication_error", "credit balance is too low", "error_max_turns"],
    nonRetryableExitCodes: [],
    env: {
      // Its own retries (10, over about 3 minutes) off: roster's retry policy decides.
      CLAUDE_CODE_MAX_RETRIES: "0",
      // Nothing but the model API: no telemetry, error reports, update checks or other traffic.
      DISABLE_TELEMETRY: "1",
      DISABLE_ERROR_REPORTING: "1",
      DISABLE_AUTOUPDATER: "1",
      DISABLE_BUG_COMMAND: "1",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    },
    // Edits in its worktree without asking (--dangerously-skip-permissions is refused as root).
    permissionArgs: [["--permission-mode", "acceptEdits"]],
    keyEnv: "ANTHROPIC_API_KEY",
    baseUrlEnv: "ANTHROPIC_BASE_URL",
    dialect: "claude",
  },
  /** Codex CLI: `codex exec --json --sandbox workspace-write` (prompt on stdin), JSONL events on stdout. */
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
    // Retries, base URL and outside traffic are config values: see ./settings.ts (-c overrides).
    env: {},
    // Its default sandbox is read-only: writes are rejected and it still exits 0.
    permissionArgs: [["--sandbox", "workspace-write"]],
    keyEnv: "OPENAI_API_KEY",
    baseUrlEnv: null,
    dialect: "codex",
  },
  /**
   * Gemini CLI: `gemini --output-format json --approval-mode auto_edit --prompt PROMPT`; exit 42 is
   * bad input, 53 the turn limit; an API error exits with its HTTP status mod 256 and prints its
   * JSON on stderr.
   */
  gemini: {
    command: "gemini",
    args: ["--output-format", "json"],
    modelArgs: ["--model", "{model}"],
    prompt: "argument",
    promptFlag: "--prompt",
    output: { format: "json", result: "response", errorWhen: "error", errorMessage: "error.message", session: "session_id", errorOnStderr: true },
    rateLimitPatterns: COMMON_RATE_LIMIT,
    nonRetryablePatterns: ["api key not valid", "permission[ _]denied", "unauthenticated"],
    nonRetryableExitCodes: [42, 53],
    // The worktree is one roster made for this attempt: trusted, so its settings and tools apply.
    env: { GEMINI_CLI_TRUST_WORKSPACE: "true" },
    // Without it, -p mode does not even offer its write tools.
    permissionArgs: [["--approval-mode", "auto_edit"]],
    keyEnv: "GEMINI_API_KEY",
    baseUrlEnv: "GOOGLE_GEMINI_BASE_URL",
    dialect: "gemini",
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
    env: {},
    permissionArgs: [],
    keyEnv: null,
    baseUrlEnv: null,
    dialect: null,
  },
};
