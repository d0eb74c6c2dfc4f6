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
  /** Run each attempt in its own git worktree and branch. */
  workspace: workspaceSchema.optional(),
};

/** Cross-field rules of the agent entry (used as its superRefine). */
export function checkAgentAdapter(value: { profile: string; command?: string | undefined }, ctx: z.RefinementCtx): void {
  if (value.profile === "custom" && value.command === undefined) {
    ctx.addIssue({ code: "custom", path: ["command"], message: "the custom profile needs a command" });
  }
}
