import { z } from "zod";
import { workspaceSchema } from "../../workspace/config.js";

/**
 * The persona options of the `agent` adapter beyond `{ kind, profile, command,
 * args, cwd, env, model }`, spread into its entry in src/personas/schema.ts so a
 * persona file is checked once, at load, with every problem named.
 */
export const AGENT_PROFILE_NAMES = ["claude", "codex", "gemini", "custom"] as const;
export type AgentProfileName = (typeof AGENT_PROFILE_NAMES)[number];
export const AGENT_ROLES = ["worker", "planner"] as const;
export const PROMPT_MODES = ["stdin", "argument"] as const;
export const OUTPUT_FORMATS = ["json", "jsonl", "text"] as const;
export const HOME_MODES = ["inherit", "fresh"] as const;
/** Environment variable names: letters, digits and _. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const regexSource = z.string().refine(
  (source) => {
    try {
      new RegExp(source, "i");
      return true;
    } catch {
      // The refine's message is the error; nothing is swallowed.
      return false;
    }
  },
  { message: "must be a valid regular expression" },
);

export const agentAdapterFields = {
  profile: z.enum(AGENT_PROFILE_NAMES, { message: `must be one of ${AGENT_PROFILE_NAMES.join(", ")}` }),
  /** `planner`: the CLI's answer is parsed as `{ result, tasks }` and the tasks are enqueued as children. */
  role: z.enum(AGENT_ROLES).optional(),
  /** How the prompt reaches the CLI; overrides the profile. */
  promptVia: z.enum(PROMPT_MODES).optional(),
  /** How stdout is read; overrides the profile. */
  output: z.enum(OUTPUT_FORMATS).optional(),
  /** Dotted path of the answer in the JSON output (jsonl: in the last line); overrides the profile. */
  resultPath: z.string().min(1).optional(),
  /** Output that means "rate limited, try later": the attempt fails retryable. Added to the profile's. Case-insensitive. */
  rateLimitPatterns: z.array(regexSource).optional(),
  /** Output that means retrying cannot help (bad credentials, bad usage). Added to the profile's. Case-insensitive. */
  nonRetryablePatterns: z.array(regexSource).optional(),
  /** Exit codes that mean retrying cannot help. Added to the profile's. */
  nonRetryableExitCodes: z.array(z.number().int().min(1).max(255)).optional(),
  /** After an abort, ms between SIGTERM to the CLI's process tree and SIGKILL. Default 1500 (under the pool's 2 s abort grace). */
  killGraceMs: z.number().int().min(0).max(600_000).optional(),
  /**
   * The model API's base URL (e.g. `http://127.0.0.1:8080` for a gateway): set as
   * ANTHROPIC_BASE_URL (claude), GOOGLE_GEMINI_BASE_URL (gemini), or a provider
   * `roster` in codex's config (`-c model_providers.roster={base_url …}`; `/v1` is the
   * usual suffix there). Unset: the CLI's own default.
   */
  baseUrl: z.string().url().optional(),
  /**
   * The variable in roster's environment that holds the API key; its value reaches the CLI as
   * the variable the CLI reads (ANTHROPIC_API_KEY, GEMINI_API_KEY; codex reads it by this name
   * through its provider's env_key). Unset: the CLI's own variable, as inherited.
   */
  apiKeyEnv: z.string().regex(ENV_NAME, "must be an environment variable name").optional(),
  /**
   * `fresh`: each attempt runs with HOME (and CODEX_HOME, GEMINI_CLI_HOME) in a new empty folder
   * holding only the settings roster writes (gemini's retry and telemetry settings, its auth type),
   * removed after the attempt; needs an API key, as logins live in the real HOME. `inherit`
   * (default): the CLI sees the user's HOME, logins and settings.
   */
  home: z.enum(HOME_MODES).optional(),
  /** Run each attempt in its own git worktree and branch. */
  workspace: workspaceSchema.optional(),
};

/** Cross-field rules of the agent entry (used as its superRefine). */
export function checkAgentAdapter(value: { profile: string; command?: string | undefined }, ctx: z.RefinementCtx): void {
  if (value.profile === "custom" && value.command === undefined) {
    ctx.addIssue({ code: "custom", path: ["command"], message: "the custom profile needs a command" });
  }
}
