/**
 * Model prices and the cost of an attempt's tokens: pure code (docs/ARCHITECTURE.md, style notes). The
 * store calls costOf when the source reported no cost of its own (Claude Code does;
 * Codex and Gemini do not), with the user's prices (`roster cost price`) over these
 * defaults.
 */

/** US dollars per million tokens of each kind. */
export interface ModelPrice {
  inputPerMTok: number;
  outputPerMTok: number;
  cacheReadPerMTok: number;
  cacheWritePerMTok: number;
}

/** When DEFAULT_PRICES were copied from the providers' public price lists. Check them before you trust a bill. */
export const DEFAULT_PRICES_DATE = "2025-09-01";

/**
 * List prices (standard tier, prompts under 200k tokens) by model-name prefix, as
 * published on DEFAULT_PRICES_DATE. A model matches the longest prefix, so
 * "claude-sonnet-4-5-20250929" takes "claude-sonnet-4-5". Reasoning tokens are billed
 * as output, and the usage readers already count them in outputTokens.
 */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = Object.freeze({
  "claude-opus-4-1": price(15, 75, 1.5, 18.75),
  "claude-opus-4": price(15, 75, 1.5, 18.75),
  "claude-sonnet-4-5": price(3, 15, 0.3, 3.75),
  "claude-sonnet-4": price(3, 15, 0.3, 3.75),
  "claude-3-7-sonnet": price(3, 15, 0.3, 3.75),
  "claude-3-5-haiku": price(0.8, 4, 0.08, 1),
  "claude-haiku-4-5": price(1, 5, 0.1, 1.25),
  "gpt-5": price(1.25, 10, 0.125, 0),
  "gpt-5-codex": price(1.25, 10, 0.125, 0),
  "gpt-5-mini": price(0.25, 2, 0.025, 0),
  "gpt-5-nano": price(0.05, 0.4, 0.005, 0),
  "gpt-4.1": price(2, 8, 0.5, 0),
  "gpt-4.1-mini": price(0.4, 1.6, 0.1, 0),
  "o3": price(2, 8, 0.5, 0),
  "o4-mini": price(1.1, 4.4, 0.275, 0),
  "gemini-2.5-pro": price(1.25, 10, 0.31, 0),
  "gemini-2.5-flash": price(0.3, 2.5, 0.075, 0),
  "gemini-2.5-flash-lite": price(0.1, 0.4, 0.025, 0),
});

function price(inputPerMTok: number, outputPerMTok: number, cacheReadPerMTok: number, cacheWritePerMTok: number): ModelPrice {
  return Object.freeze({ inputPerMTok, outputPerMTok, cacheReadPerMTok, cacheWritePerMTok });
}

/** Tokens by kind, as recorded per attempt. */
export interface TokenCounts {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

/**
 * The price of `model`: the user's table first, then the defaults; in each, the exact
 * name or else the longest prefix of it. Null for an unknown (or missing) model.
 */
export function priceFor(model: string | null | undefined, user: Readonly<Record<string, ModelPrice>> = {}): ModelPrice | null {
  if (model === null || model === undefined || model === "") return null;
  return longestPrefix(model, user) ?? longestPrefix(model, DEFAULT_PRICES);
}

function longestPrefix(model: string, table: Readonly<Record<string, ModelPrice>>): ModelPrice | null {
  let best: string | null = null;
  for (const name of Object.keys(table)) {
    if (model === name || (model.startsWith(name) && (best === null || name.length > best.length))) {
      if (model === name) return table[name]!;
      best = name;
    }
  }
  return best === null ? null : table[best]!;
}

/** The cost in USD of these tokens at this price. */
export function costOf(tokens: TokenCounts, p: ModelPrice): number {
  const usd =
    (tokens.inputTokens * p.inputPerMTok +
      tokens.outputTokens * p.outputPerMTok +
      tokens.cacheReadTokens * p.cacheReadPerMTok +
      tokens.cacheWriteTokens * p.cacheWritePerMTok) /
    1_000_000;
  // Round to a millionth of a dollar so sums of many attempts stay readable.
  return Math.round(usd * 1e6) / 1e6;
}

/** Every token an attempt spent, the number token budgets count. Reasoning is already inside output. */
export function totalTokens(tokens: TokenCounts): number {
  return tokens.inputTokens + tokens.outputTokens + tokens.cacheReadTokens + tokens.cacheWriteTokens;
}
