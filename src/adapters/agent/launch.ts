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
 * argv = profile args, the profile's permission flags (each group left out when the
 * persona's args hold its flag), model args (when a model is set), `extraArgs` (the
 * attempt's settings, ./settings.ts), the persona's args, `tailArgs` (a subcommand
 * after all options: codex's `resume <id>`, ./resume.ts); then
 * the prompt: at a "{prompt}" element if there is one, else appended (after the
 * profile's promptFlag) in argument mode, else on stdin.
 */
export function buildLaunch(profile: AgentProfile, config: AgentAdapterConfig, prompt: string, extraArgs: string[] = [], tailArgs: string[] = []): Launch {
  const model = config.model;
  const fill = (arg: string): string => (arg === MODEL_TOKEN && model !== undefined ? model : arg);
  const own = config.args ?? [];
  const permissions = profile.permissionArgs.filter((group) => !own.some((arg) => arg === group[0] || arg.startsWith(`${group[0]}=`))).flat();
  const args = [...profile.args, ...permissions, ...(model === undefined ? [] : profile.modelArgs), ...extraArgs, ...own].map(fill).concat(tailArgs);
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
