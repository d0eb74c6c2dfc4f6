import type { AdapterConfig } from "../../personas/schema.js";
import { PROFILES, type AgentProfile, type OutputSpec } from "./profiles.js";

/** The `agent` entry of a persona's adapter config. */
export type AgentAdapterConfig = Extract<AdapterConfig, { kind: "agent" }>;

/** What to spawn: never a shell string; the prompt is one argv element or stdin. */
export interface Launch {
  command: string;
  args: string[];
  /** Written to the CLI's stdin (then closed); null when the prompt went in argv. */
  stdin: string | null;
}

const PROMPT_TOKEN = "{prompt}";
const MODEL_TOKEN = "{model}";

/** The persona's profile with its overrides applied. */
export function resolveProfile(config: AgentAdapterConfig): AgentProfile {
  const base = PROFILES[config.profile];
  return {
    ...base,
    command: config.command ?? base.command,
    prompt: config.promptVia ?? base.prompt,
    output: resolveOutput(base.output, config),
    rateLimitPatterns: [...base.rateLimitPatterns, ...(config.rateLimitPatterns ?? [])],
    nonRetryablePatterns: [...base.nonRetryablePatterns, ...(config.nonRetryablePatterns ?? [])],
    nonRetryableExitCodes: [...base.nonRetryableExitCodes, ...(config.nonRetryableExitCodes ?? [])],
  };
}

function resolveOutput(base: OutputSpec, config: AgentAdapterConfig): OutputSpec {
  const format = config.output ?? base.format;
  const path = config.resultPath;
  if (format === "text") return { format: "text" };
  if (format === "json") {
    if (base.format === "json") return path === undefined ? base : { ...base, result: path };
    return { format: "json", result: path ?? "result" };
  }
  if (base.format === "jsonl") return path === undefined ? base : { ...base, result: { match: {}, path } };
  return { format: "jsonl", result: { match: {}, path: path ?? "result" }, errors: [] };
}

/**
 * argv = profile args, model args (when a model is set), the persona's args; then
 * the prompt: at a "{prompt}" element if there is one, else appended (after the
 * profile's promptFlag) in argument mode, else on stdin.
 */
export function buildLaunch(profile: AgentProfile, config: AgentAdapterConfig, prompt: string): Launch {
  const model = config.model;
  const fill = (arg: string): string => (arg === MODEL_TOKEN && model !== undefined ? model : arg);
  const args = [...profile.args, ...(model === undefined ? [] : profile.modelArgs), ...(config.args ?? [])].map(fill);
  const at = args.indexOf(PROMPT_TOKEN);
  if (at >= 0) {
    args[at] = prompt;
    return { command: profile.command, args, stdin: null };
  }
  if (profile.prompt === "argument") {
    if (profile.promptFlag !== undefined) args.push(profile.promptFlag);
    args.push(prompt);
    return { command: profile.command, args, stdin: null };
  }
  return { command: profile.command, args, stdin: prompt };
}
