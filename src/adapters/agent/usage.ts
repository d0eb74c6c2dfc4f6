import type { Json } from "../../store/types.js";
import type { NormalUsage } from "../../store/usage-values.js";
import type { AgentDialect } from "./profiles.js";

/**
 * What one attempt of an agent CLI spent, read from the CLI's own output and kept
 * with the attempt's result (`result.usage`) or error (`details.usage`), where the
 * economics code can sum it. One shape for every CLI:
 *
 * - `inputTokens`: input that was neither read from nor written to a prompt cache;
 * - `cacheReadTokens` / `cacheWriteTokens`: input read from / written to the cache;
 * - `outputTokens`: every billed output token, reasoning included;
 * - `reasoningTokens`: the part of `outputTokens` spent thinking (0 where not reported);
 * - `costUsd`: the CLI's own figure where it reports one (Claude Code, from its price
 *   table), else null; `model`: the model the CLI named; `turns`: Claude's
 *   `num_turns`, Gemini's request count, Codex's completed turns.
 *
 * Readings by CLI (versions in docs/agent-clis.md): Claude Code's `usage` of its
 * result JSON (cache creation/read apart from input already); Codex's
 * `turn.completed.usage` events, summed (its `input_tokens` includes the cached ones,
 * its `output_tokens` the reasoning); Gemini's `stats.models.M.tokens` (`input` is
 * `prompt` minus `cached`; `candidates` excludes `thoughts`).
 *
 * readUsage: that usage (NormalUsage, as the store takes it) in a finished run's output, or null when the CLI printed none.
 */
export function readUsage(dialect: AgentDialect | null, stdout: string): NormalUsage | null {
  if (dialect === "claude") return claudeUsage(lastJson(stdout, (doc) => doc.type === "result"));
  if (dialect === "codex") return codexUsage(jsonLines(stdout));
  if (dialect === "gemini") return geminiUsage(lastJson(stdout, (doc) => "stats" in doc));
  return null;
}

export function usageJson(usage: NormalUsage): { [key: string]: Json } {
  return { ...usage };
}

type Doc = { [key: string]: Json };

function claudeUsage(doc: Doc | null): NormalUsage | null {
  if (doc === null) return null;
  const u = object(doc.usage);
  if (u === null) return null;
  const models = object(doc.modelUsage);
  const model = models === null ? null : (Object.keys(models)[0] ?? null);
  return {
    // "claude-opus-4-8[1m]": the bracket is Claude Code's context-window note, not part of the model's name.
    model: model === null ? null : model.replace(/\[[^\]]*\]$/, ""),
    inputTokens: num(u.input_tokens),
    outputTokens: num(u.output_tokens),
    cacheReadTokens: num(u.cache_read_input_tokens),
    cacheWriteTokens: num(u.cache_creation_input_tokens),
    reasoningTokens: 0,
    costUsd: typeof doc.total_cost_usd === "number" ? doc.total_cost_usd : null,
    turns: typeof doc.num_turns === "number" ? doc.num_turns : null,
  };
}

function codexUsage(lines: Doc[]): NormalUsage | null {
  const turns = lines.filter((l) => l.type === "turn.completed").map((l) => object(l.usage)).filter((u): u is Doc => u !== null);
  if (turns.length === 0) return null;
  const sum = (key: string): number => turns.reduce((total, u) => total + num(u[key]), 0);
  const cached = sum("cached_input_tokens");
  const written = sum("cache_write_input_tokens");
  return {
    model: null,
    inputTokens: Math.max(0, sum("input_tokens") - cached - written),
    outputTokens: sum("output_tokens"),
    cacheReadTokens: cached,
    cacheWriteTokens: written,
    reasoningTokens: sum("reasoning_output_tokens"),
    costUsd: null,
    turns: turns.length,
  };
}

function geminiUsage(doc: Doc | null): NormalUsage | null {
  const models = object(object(doc?.stats ?? null)?.models ?? null);
  if (models === null || Object.keys(models).length === 0) return null;
  const usage: NormalUsage = { model: null, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, costUsd: null, turns: 0 };
  let most = -1;
  for (const [name, value] of Object.entries(models)) {
    const entry = object(value);
    const tokens = object(entry?.tokens ?? null);
    if (tokens === null) continue;
    const cached = num(tokens.cached);
    const input = tokens.input === undefined ? Math.max(0, num(tokens.prompt) - cached) : num(tokens.input);
    usage.inputTokens += input;
    usage.cacheReadTokens += cached;
    usage.outputTokens += num(tokens.candidates) + num(tokens.thoughts);
    usage.reasoningTokens += num(tokens.thoughts);
    usage.turns! += num(object(entry?.api ?? null)?.totalRequests);
    const total = num(tokens.total);
    if (total > most) (most = total), (usage.model = name);
  }
  return usage;
}

function object(value: Json | undefined): Doc | null {
  return value !== null && value !== undefined && typeof value === "object" && !Array.isArray(value) ? value : null;
}

function num(value: Json | undefined): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

/** The whole text as one JSON object, else the last JSON line that `want` accepts. */
function lastJson(text: string, want: (doc: Doc) => boolean): Doc | null {
  try {
    const parsed = JSON.parse(text) as Json;
    // Claude Code's `--output-format json --verbose` prints its events as one array.
    const docs = Array.isArray(parsed) ? parsed.map((d) => object(d)).filter((d): d is Doc => d !== null) : [object(parsed)].filter((d): d is Doc => d !== null);
    const found = docs.filter(want);
    if (found.length > 0) return found[found.length - 1]!;
  } catch {
    // Not one document: look for lines.
  }
  const lines = jsonLines(text).filter(want);
  return lines[lines.length - 1] ?? null;
}

export function jsonLines(text: string): Doc[] {
  const out: Doc[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.trimStart().startsWith("{")) continue;
    try {
      const doc = object(JSON.parse(line) as Json);
      if (doc !== null) out.push(doc);
    } catch {
      // A line that only looks like JSON (a log line): skipped.
      continue;
    }
  }
  return out;
}
