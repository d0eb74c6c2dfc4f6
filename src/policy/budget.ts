import { RosterError } from "../errors.js";
import type { AttemptBudget, BudgetLimit } from "../store/economics.js";
import { lenientUsage } from "../store/usage-values.js";
import { costOf, priceFor, totalTokens, type ModelPrice } from "./prices.js";

/**
 * Budget arithmetic for a running attempt (docs/economics.md, "Streaming usage and
 * the in-flight rule"), shared by the supervisor's budget watch and the MCP
 * workers' `report_progress`. Pure: no store, no clock.
 */

/** What a usage report counts against budgets: total tokens, and USD (the source's figure, else priced; 0 when unpriced). */
export interface Spend {
  tokens: number;
  costUsd: number;
}

export const NO_SPEND: Spend = Object.freeze({ tokens: 0, costUsd: 0 });

export function spendOf(usage: unknown, prices: Readonly<Record<string, ModelPrice>>): Spend {
  const u = lenientUsage(usage);
  if (u === null) return NO_SPEND;
  if (u.costUsd !== null) return { tokens: totalTokens(u), costUsd: u.costUsd };
  const price = priceFor(u.model, prices);
  return { tokens: totalTokens(u), costUsd: price === null ? 0 : costOf(u, price) };
}

export function limitReached(limit: BudgetLimit, spentUsd: number, spentTokens: number): boolean {
  return (limit.maxCostUsd !== null && spentUsd >= limit.maxCostUsd) || (limit.maxTokens !== null && spentTokens >= limit.maxTokens);
}

export interface Crossing {
  limit: BudgetLimit;
  spentUsd: number;
  spentTokens: number;
}

/**
 * The budget an attempt's running spend reaches (its task's first, then its goal's), or
 * null: task = settled + `own`; goal = settled + `own` + `others` (the goal's other
 * running attempts the caller knows of).
 */
export function budgetCrossing(budget: AttemptBudget, own: Spend, others: Spend = NO_SPEND): Crossing | null {
  if (budget.task !== null) {
    const spentUsd = budget.task.spentUsd + own.costUsd;
    const spentTokens = budget.task.spentTokens + own.tokens;
    if (limitReached(budget.task, spentUsd, spentTokens)) return { limit: budget.task, spentUsd, spentTokens };
  }
  if (budget.goal !== null) {
    const spentUsd = budget.goal.spentUsd + own.costUsd + others.costUsd;
    const spentTokens = budget.goal.spentTokens + own.tokens + others.tokens;
    if (limitReached(budget.goal, spentUsd, spentTokens)) return { limit: budget.goal, spentUsd, spentTokens };
  }
  return null;
}

/** The error an attempt stopped for its budget settles with (the store gives it back uncounted while the budget holds). */
export function budgetExhaustedError(task: { id: number; attempt: number }, c: Crossing, by: string = "its usage"): RosterError {
  const whose = c.limit.scope === "task" ? `task ${c.limit.key}'s budget` : `goal ${c.limit.key}'s budget`;
  const limits = [c.limit.maxCostUsd === null ? null : `$${c.limit.maxCostUsd}`, c.limit.maxTokens === null ? null : `${c.limit.maxTokens} tokens`]
    .filter((x) => x !== null)
    .join(", ");
  const usd = Math.round(c.spentUsd * 1e6) / 1e6;
  return new RosterError(
    "BUDGET_EXHAUSTED",
    `task ${task.id} attempt ${task.attempt} aborted: ${by} brought ${whose} to $${usd} and ${c.spentTokens} tokens (limit ${limits}); it runs again when the budget is raised (\`roster budget raise --${c.limit.scope} ${c.limit.key}\`)`,
    { retryable: true, details: { scope: c.limit.scope, key: c.limit.key, spentUsd: usd, spentTokens: c.spentTokens, maxCostUsd: c.limit.maxCostUsd, maxTokens: c.limit.maxTokens } },
  );
}
