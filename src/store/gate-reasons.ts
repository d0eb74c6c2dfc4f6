/**
 * `roster why`'s words for the claim's economic gates (docs/economics.md), shared by both
 * stores: a held task or goal, a persona's closed gate, a full concurrency key. Lowercase
 * codes, reserved in src/store/why.ts.
 */
import type { GateReason } from "./economics.js";
import type { WhyReason } from "./types.js";

function usd(n: number): string {
  return `$${n.toFixed(n >= 1 ? 2 : 4)}`;
}

function lifts(until: number | null, now: number): string {
  return until === null ? "until lifted by hand" : `until ${new Date(until).toISOString()} (in ${Math.max(0, Math.ceil((until - now) / 1000))} s)`;
}

/** A budget's limits, as the settlement reads them (budget-rules.ts attemptBudgetOf); null when not known. */
export type HeldLimits = { maxCostUsd: number | null; maxTokens: number | null } | null;

/**
 * A task's or its goal's budget hold, with what the scope spent against its limits and the
 * raise that lifts it: `--tokens` for a spent token limit, `--usd` for a spent dollar limit,
 * both when both are (raising the other limit would leave the hold on).
 */
export function holdReason(h: { scope: "task" | "goal"; key: number; since: number; cost_usd: number | null; tokens: number | null }, limits: HeldLimits): WhyReason {
  const whose = h.scope === "task" ? "its own" : `its goal's (task ${h.key})`;
  const spentUsd = h.cost_usd ?? 0;
  const spentTokens = h.tokens ?? 0;
  const usdSpent = limits?.maxCostUsd != null && spentUsd >= limits.maxCostUsd;
  const tokensSpent = limits?.maxTokens != null && spentTokens >= limits.maxTokens;
  const flags = usdSpent || tokensSpent ? [...(usdSpent ? ["--usd N"] : []), ...(tokensSpent ? ["--tokens N"] : [])].join(" ") : "--usd N and/or --tokens N";
  const usdText = limits?.maxCostUsd != null ? `${usd(spentUsd)} of ${usd(limits.maxCostUsd)}` : usd(spentUsd);
  const tokensText = limits?.maxTokens != null ? `${spentTokens} of ${limits.maxTokens} tokens` : `${spentTokens} tokens`;
  return {
    code: "budget_exhausted",
    message: `${whose} budget is spent (${usdText}, ${tokensText}) since ${new Date(h.since).toISOString()}; it lifts when raised (\`roster budget raise --${h.scope} ${h.key} ${flags}\`)`,
    data: {
      scope: h.scope,
      key: String(h.key),
      spentUsd,
      spentTokens,
      maxCostUsd: limits?.maxCostUsd ?? null,
      maxTokens: limits?.maxTokens ?? null,
      since: h.since,
      until: null,
    },
  };
}

/** A concurrency key at its limit, with the tasks holding it. */
export function keyFullReason(key: string, running: number, limit: number, holders: number[]): WhyReason {
  return {
    code: "concurrency_key_full",
    message: `its concurrency key "${key}" is at its limit (${running} of ${limit} running: ${holders.map((id) => `task ${id}`).join(", ")}); it lifts when one of them ends`,
    data: { key, running, limit, holders, until: null },
  };
}

/** A claim gate as a `roster why` reason. */
export function whyOf(r: GateReason, now: number): WhyReason {
  switch (r.code) {
    case "PROVIDER_PAUSED":
      return {
        code: "provider_paused",
        message: `provider "${r.provider}" is paused (${r.reason}) ${lifts(r.until, now)}${r.until === null ? ` (\`roster provider resume ${r.provider}\`)` : ""}`,
        data: { provider: r.provider, reason: r.reason, until: r.until },
      };
    case "BREAKER_OPEN":
      return {
        code: "breaker_open",
        message: `persona "${r.persona}"'s circuit breaker is open after ${r.failures} failed attempts ${lifts(r.until, now)}, then one probe runs (\`roster breaker reset ${r.persona}\` closes it)`,
        data: { persona: r.persona, state: "open", failures: r.failures, until: r.until },
      };
    case "BREAKER_PROBING":
      return {
        code: "breaker_open",
        message: `persona "${r.persona}"'s circuit breaker is half-open: its probe (task ${r.probeTaskId ?? "?"}) runs, and nothing else of the persona is claimed until it ends`,
        data: { persona: r.persona, state: "probing", probeTaskId: r.probeTaskId, until: null },
      };
    case "BUDGET_EXHAUSTED":
      return {
        code: "budget_exhausted",
        message: `the ${r.scope === "global" ? "global" : `persona "${r.key}"`} budget is spent (${usd(r.spentUsd)} of ${r.maxCostUsd === null ? "-" : usd(r.maxCostUsd)}, ${r.spentTokens} of ${r.maxTokens ?? "-"} tokens) for this window; it lifts when the window turns or when raised`,
        data: { scope: r.scope, key: r.key, spentUsd: r.spentUsd, spentTokens: r.spentTokens, maxCostUsd: r.maxCostUsd, maxTokens: r.maxTokens },
      };
    case "RATE_LIMITED":
      return {
        code: "rate_limited",
        message: `rate limit "${r.key.replace(/^rate:/, "")}" took its ${r.starts} starts per ${r.perMs} ms ${lifts(r.until, now)}`,
        data: { key: r.key, starts: r.starts, perMs: r.perMs, until: r.until },
      };
  }
}
