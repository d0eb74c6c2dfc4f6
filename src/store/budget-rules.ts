/**
 * The rules of budgets (docs/economics.md) that need no database: a budget's scope and
 * window checked, a raise, a task's policy as a budget row, a budget's record with its
 * spend, and which task and goal holds a settlement moves. Both stores read and write their
 * rows with their own SQL (src/store/sqlite/budget-commands.ts, src/store/postgres/budgets.ts)
 * and decide here; the claim's other gates are src/store/gates.ts.
 */
import { RosterError } from "../errors.js";
import { isExhausted, windowName } from "./gates.js";
import { BUDGET_SCOPES, BUDGET_WINDOWS, type AttemptBudget, type BudgetRecord, type BudgetScope, type BudgetWindow, type SetBudgetParams } from "./economics.js";

export interface BudgetRow {
  scope: BudgetScope;
  key: string;
  window_ms: number;
  max_cost_usd: number | null;
  max_tokens: number | null;
  updated_at: number;
}

export function checkScope(scope: BudgetScope, key: string): { scope: BudgetScope; key: string } {
  if (!(BUDGET_SCOPES as readonly string[]).includes(scope)) {
    throw new RosterError("VALIDATION", `scope: must be one of ${BUDGET_SCOPES.join(", ")}, got ${JSON.stringify(scope)}`, { details: { field: "scope" } });
  }
  if (scope === "global") return { scope, key: "" };
  if ((scope === "task" || scope === "goal") && !/^[1-9][0-9]*$/.test(key)) {
    throw new RosterError("VALIDATION", `${scope}: must be a task id (a positive integer), got ${JSON.stringify(key)}`, { details: { field: scope } });
  }
  if (scope === "persona" && (typeof key !== "string" || key === "")) {
    throw new RosterError("VALIDATION", "persona: must name a persona", { details: { field: "persona" } });
  }
  return { scope, key };
}

function checkLimit(field: string, value: number | null | undefined, integer: boolean): void {
  if (value === undefined || value === null) return;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new RosterError("VALIDATION", `${field}: must be a non-negative ${integer ? "integer" : "number"}, got ${JSON.stringify(value)}`, { details: { field } });
  }
}

/** setBudget's parameters checked, before anything is read: scope, window and limits. */
export function checkSetBudget(p: SetBudgetParams): { scope: BudgetScope; key: string; window: BudgetWindow; windowMs: number } {
  const { scope, key } = checkScope(p.scope, p.key);
  const window = p.window ?? (scope === "persona" || scope === "global" ? "day" : "total");
  if (!(window in BUDGET_WINDOWS)) throw new RosterError("VALIDATION", `window: must be one of ${Object.keys(BUDGET_WINDOWS).join(", ")}`, { details: { field: "window" } });
  if ((scope === "task" || scope === "goal") && window !== "total") {
    throw new RosterError("VALIDATION", `window: a ${scope} budget is for the ${scope}'s whole life; windows are for persona and global budgets`, { details: { field: "window" } });
  }
  checkLimit("maxCostUsd", p.maxCostUsd, false);
  checkLimit("maxTokens", p.maxTokens, true);
  if ((p.maxCostUsd ?? null) === null && (p.maxTokens ?? null) === null) {
    throw new RosterError("VALIDATION", "a budget needs a limit: maxCostUsd (--usd) or maxTokens (--tokens)", { details: { field: "maxCostUsd" } });
  }
  return { scope, key, window, windowMs: BUDGET_WINDOWS[window] };
}

export interface RaiseParams {
  scope: BudgetScope;
  key: string;
  addCostUsd?: number;
  addTokens?: number;
  now: number;
  by?: string | null;
}

/** raiseBudget's parameters checked, before anything is read. */
export function checkRaise(p: RaiseParams): { scope: BudgetScope; key: string } {
  const checked = checkScope(p.scope, p.key);
  checkLimit("addCostUsd", p.addCostUsd, false);
  checkLimit("addTokens", p.addTokens, true);
  if ((p.addCostUsd ?? null) === null && (p.addTokens ?? null) === null) {
    throw new RosterError("VALIDATION", "a raise needs an amount: addCostUsd (--usd) or addTokens (--tokens)", { details: { field: "addCostUsd" } });
  }
  return checked;
}

/** The limits after a raise of `row` (the set budget, or the task's own policy as one); INVALID_STATE when there is none. */
export function raised(row: BudgetRow | undefined, p: RaiseParams): { windowMs: number; maxCostUsd: number | null; maxTokens: number | null } {
  if (row === undefined) {
    throw new RosterError("INVALID_STATE", `${p.scope} ${p.key || "(global)"}: has no budget to raise; set one with \`roster budget set\``, { details: { field: "scope" } });
  }
  const usd = p.addCostUsd !== undefined && row.max_cost_usd === null ? 0 : row.max_cost_usd;
  const tokens = p.addTokens !== undefined && row.max_tokens === null ? 0 : row.max_tokens;
  return { windowMs: row.window_ms, maxCostUsd: usd === null ? null : usd + (p.addCostUsd ?? 0), maxTokens: tokens === null ? null : tokens + (p.addTokens ?? 0) };
}

/** A task's own policy limits as a budget row (source "policy"). */
export function policyRow(taskId: number, policy: { usd: number | null; tokens: number | null } | undefined, now: number): BudgetRow {
  return { scope: "task", key: String(taskId), window_ms: 0, max_cost_usd: policy?.usd ?? null, max_tokens: policy?.tokens ?? null, updated_at: now };
}

export function budgetRecord(row: BudgetRow, spent: { cost_usd: number; tokens: number } | undefined, source: BudgetRecord["source"]): BudgetRecord {
  const spentUsd = Math.round((spent?.cost_usd ?? 0) * 1e6) / 1e6;
  const spentTokens = spent?.tokens ?? 0;
  return {
    scope: row.scope,
    key: row.key,
    window: windowName(row.window_ms),
    maxCostUsd: row.max_cost_usd,
    maxTokens: row.max_tokens,
    spentUsd,
    spentTokens,
    exhausted: isExhausted(row.max_cost_usd, row.max_tokens, spentUsd, spentTokens),
    source,
  };
}

/** Limits, spend and holds of a settled attempt's task and goal, as one read returns them. */
export interface TaskLimitsRow {
  task_usd: number | null;
  task_tokens: number | null;
  goal_usd: number | null;
  goal_tokens: number | null;
  has_goal: boolean | number;
  task_spent_usd: number | null;
  task_spent_tokens: number | null;
  goal_spent_usd: number | null;
  goal_spent_tokens: number | null;
  task_held: boolean | number;
  goal_held: boolean | number;
}

/** The holds to put on (exhausted, not held) or lift (held, not exhausted) after usage of `taskId` under goal `rootId`. */
export function holdMoves(l: TaskLimitsRow, taskId: number, rootId: number): Array<{ scope: "task" | "goal"; id: number; exhausted: boolean; held: boolean }> {
  const out: Array<{ scope: "task" | "goal"; id: number; exhausted: boolean; held: boolean }> = [];
  if (l.task_usd !== null || l.task_tokens !== null) {
    out.push({ scope: "task", id: taskId, exhausted: isExhausted(l.task_usd, l.task_tokens, l.task_spent_usd ?? 0, l.task_spent_tokens ?? 0), held: Boolean(l.task_held) });
  }
  if (l.has_goal) out.push({ scope: "goal", id: rootId, exhausted: isExhausted(l.goal_usd, l.goal_tokens, l.goal_spent_usd ?? 0, l.goal_spent_tokens ?? 0), held: Boolean(l.goal_held) });
  return out.filter((m) => m.exhausted !== m.held);
}

/** The budgets a running attempt is checked against, from the same row the settlement reads (src/supervisor/budget-watch.ts). */
export function attemptBudgetOf(l: TaskLimitsRow, taskId: number, rootId: number): AttemptBudget {
  const limit = (scope: "task" | "goal", key: number, usd: number | null, tokens: number | null, spentUsd: number | null, spentTokens: number | null) =>
    usd === null && tokens === null ? null : { scope, key: String(key), maxCostUsd: usd, maxTokens: tokens, spentUsd: spentUsd ?? 0, spentTokens: spentTokens ?? 0 };
  return {
    rootId,
    task: limit("task", taskId, l.task_usd, l.task_tokens, l.task_spent_usd, l.task_spent_tokens),
    goal: l.has_goal ? limit("goal", rootId, l.goal_usd, l.goal_tokens, l.goal_spent_usd, l.goal_spent_tokens) : null,
  };
}
