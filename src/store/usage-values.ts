import { RosterError } from "../errors.js";
import type { AttemptUsage } from "./economics.js";

/**
 * Usage values as every boundary takes them (the store, a worker thread's
 * ctx.reportUsage, MCP): checked strictly when given explicitly, leniently when
 * found inside a result. Pure code, no SQL, so worker threads may import it.
 */
const TOKEN_FIELDS = ["inputTokens", "outputTokens", "cacheReadTokens", "cacheWriteTokens", "reasoningTokens"] as const;
const USAGE_KEYS = new Set<string>([...TOKEN_FIELDS, "model", "costUsd", "turns"]);

/** Usage with every field present. */
export interface NormalUsage {
  model: string | null;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  costUsd: number | null;
  turns: number | null;
}

/**
 * Checks usage a caller gave explicitly (ctx.reportUsage, an MCP worker's `usage`):
 * a VALIDATION error names the field; `where` prefixes it ("usage").
 */
export function validateUsage(value: unknown, where = "usage"): NormalUsage {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new RosterError("VALIDATION", `${where}: must be an object of token counts`, { details: { field: where } });
  }
  const u = value as Record<string, unknown>;
  for (const key of Object.keys(u)) {
    if (!USAGE_KEYS.has(key)) {
      throw new RosterError("VALIDATION", `${where}.${key}: unknown field (known: ${[...USAGE_KEYS].join(", ")})`, { details: { field: `${where}.${key}` } });
    }
  }
  for (const key of TOKEN_FIELDS) {
    const v = u[key];
    if (v !== undefined && (typeof v !== "number" || !Number.isInteger(v) || v < 0)) {
      throw new RosterError("VALIDATION", `${where}.${key}: must be a non-negative integer, got ${JSON.stringify(v)}`, { details: { field: `${where}.${key}` } });
    }
  }
  if (u.costUsd !== undefined && u.costUsd !== null && (typeof u.costUsd !== "number" || !Number.isFinite(u.costUsd) || u.costUsd < 0)) {
    throw new RosterError("VALIDATION", `${where}.costUsd: must be a non-negative number or null, got ${JSON.stringify(u.costUsd)}`, { details: { field: `${where}.costUsd` } });
  }
  if (u.turns !== undefined && u.turns !== null && (typeof u.turns !== "number" || !Number.isInteger(u.turns) || u.turns < 0)) {
    throw new RosterError("VALIDATION", `${where}.turns: must be a non-negative integer or null, got ${JSON.stringify(u.turns)}`, { details: { field: `${where}.turns` } });
  }
  if (u.model !== undefined && u.model !== null && (typeof u.model !== "string" || u.model.length > 200)) {
    throw new RosterError("VALIDATION", `${where}.model: must be a model name (a string of at most 200 characters) or null`, { details: { field: `${where}.model` } });
  }
  return lenientUsage(u)!;
}

/**
 * Usage found inside an attempt's result (`result.usage`, as the agent adapters put
 * it) or error (`details.usage`): taken where it has the shape, ignored otherwise
 * (it is part of the result, which is recorded whatever it holds). Null: none.
 */
export function lenientUsage(value: unknown): NormalUsage | null {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const u = value as Record<string, unknown>;
  const count = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.round(v) : 0);
  const usage: NormalUsage = {
    model: typeof u.model === "string" && u.model !== "" ? u.model.slice(0, 200) : null,
    inputTokens: count(u.inputTokens),
    outputTokens: count(u.outputTokens),
    cacheReadTokens: count(u.cacheReadTokens),
    cacheWriteTokens: count(u.cacheWriteTokens),
    reasoningTokens: count(u.reasoningTokens),
    costUsd: typeof u.costUsd === "number" && Number.isFinite(u.costUsd) && u.costUsd >= 0 ? u.costUsd : null,
    turns: typeof u.turns === "number" && Number.isFinite(u.turns) && u.turns >= 0 ? Math.round(u.turns) : null,
  };
  const any = TOKEN_FIELDS.some((k) => usage[k] > 0) || usage.costUsd !== null || usage.turns !== null || usage.model !== null;
  return any ? usage : null;
}

/** Sums two reports of one attempt (a module calling ctx.reportUsage per model call). */
export function addUsage(a: AttemptUsage | undefined, b: AttemptUsage): AttemptUsage {
  if (a === undefined) return { ...b };
  const sum = (x: number | undefined, y: number | undefined) => (x ?? 0) + (y ?? 0);
  return {
    model: b.model ?? a.model ?? null,
    inputTokens: sum(a.inputTokens, b.inputTokens),
    outputTokens: sum(a.outputTokens, b.outputTokens),
    cacheReadTokens: sum(a.cacheReadTokens, b.cacheReadTokens),
    cacheWriteTokens: sum(a.cacheWriteTokens, b.cacheWriteTokens),
    reasoningTokens: sum(a.reasoningTokens, b.reasoningTokens),
    costUsd: a.costUsd == null && b.costUsd == null ? null : sum(a.costUsd ?? 0, b.costUsd ?? 0),
    turns: a.turns == null && b.turns == null ? null : sum(a.turns ?? 0, b.turns ?? 0),
  };
}

/**
 * The value whose `usage` a completion without usage of its own records (docs/economics.md): its
 * result. A result given as text is read back only when it can hold a `usage` key (an object whose
 * text has `"usage"`), so a completion is not parsed for nothing.
 */
export function resultCarrier(params: { result?: unknown; resultJson?: string }): unknown {
  const text = params.resultJson;
  if (text === undefined) return params.result;
  return text.startsWith("{") && text.includes('"usage"') ? JSON.parse(text) : null;
}

/** The usage an attempt's settlement carries: the explicit one, else the result's or the error details'. */
export function usageOfSettlement(explicit: AttemptUsage | undefined, carrier: unknown): NormalUsage | null {
  if (explicit !== undefined) return validateUsage(explicit);
  if (carrier === null || typeof carrier !== "object" || Array.isArray(carrier)) return null;
  return lenientUsage((carrier as { usage?: unknown }).usage);
}

/** One settled attempt's usage, as its settlement hands it to the store's usage records. */
export interface AttemptSpend {
  taskId: number;
  attempt: number;
  agentId: string | null;
  /** completed | retrying | failed | released | budget_exhausted (or another settled outcome the store adds). */
  outcome: string;
  claimedAt: number | null;
  usage: NormalUsage;
  now: number;
}
