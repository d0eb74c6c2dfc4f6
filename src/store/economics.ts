/**
 * The economics part of the store interface (issue 16): usage per attempt, budgets,
 * provider pauses, circuit breakers and rate limits. The rules live in the store,
 * so every process sharing it sees the same spend and the same gates, and the
 * claim enforces them (docs/ARCHITECTURE.md rule 15). Nothing here names a driver.
 */
import type { ModelPrice } from "../policy/prices.js";

/**
 * What one attempt spent, as its source reports it (the agent CLI adapters'
 * `result.usage` / `details.usage`, a module's ctx.reportUsage, a shell script's
 * `::roster:usage` line, an MCP worker's `usage` argument). Token counts are
 * non-negative integers; missing ones are 0. `outputTokens` includes reasoning.
 */
export interface AttemptUsage {
  model?: string | null;
  inputTokens?: number;
  outputTokens?: number;
  cacheReadTokens?: number;
  cacheWriteTokens?: number;
  reasoningTokens?: number;
  /** The source's own figure, when it reports one; else roster prices the tokens. */
  costUsd?: number | null;
  turns?: number | null;
}

export const TOKEN_KINDS = ["input", "output", "cacheRead", "cacheWrite", "reasoning"] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

/** One attempt's recorded usage. */
export interface UsageRecord {
  taskId: number;
  rootId: number;
  attempt: number;
  agentId: string | null;
  persona: string;
  provider: string;
  model: string | null;
  outcome: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  turns: number | null;
  durationMs: number | null;
  costUsd: number | null;
  costSource: "reported" | "priced" | "unpriced";
  at: number;
}

export const COST_GROUPS = ["persona", "goal", "model", "agent", "day", "provider"] as const;
export type CostGroup = (typeof COST_GROUPS)[number];

export interface CostRow {
  /** The group's value: persona id, goal (root task) id, model, agent id, UTC day (YYYY-MM-DD). */
  key: string;
  attempts: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  tokens: number;
  costUsd: number;
  /** Attempts whose cost is unknown (no reported cost, no price for the model): costUsd leaves them out. */
  unpriced: number;
}

export const BUDGET_SCOPES = ["task", "goal", "persona", "global"] as const;
export type BudgetScope = (typeof BUDGET_SCOPES)[number];
/** Windows of persona and global budgets; task and goal budgets are for all time. */
export const BUDGET_WINDOWS = { total: 0, hour: 3_600_000, day: 86_400_000 } as const;
export type BudgetWindow = keyof typeof BUDGET_WINDOWS;

export interface BudgetRecord {
  scope: BudgetScope;
  /** Task or goal id, persona id, '' for global. */
  key: string;
  window: BudgetWindow;
  maxCostUsd: number | null;
  maxTokens: number | null;
  /** Spent in the current window (all time for task and goal). */
  spentUsd: number;
  spentTokens: number;
  /** True when a limit is reached: the claim skips what it covers. */
  exhausted: boolean;
  /** 'policy' for a task's own policy.maxCostUsd / maxTokens. */
  source: "set" | "policy";
}

export interface SetBudgetParams {
  scope: BudgetScope;
  key: string;
  window?: BudgetWindow;
  maxCostUsd?: number | null;
  maxTokens?: number | null;
  now: number;
  /** Who set it (the audit event's agent): "cli", an agent id. */
  by?: string | null;
}

/** Why a claim of a persona takes nothing now (or skips some of its tasks). `roster why` shows these. */
export type GateReason =
  | { code: "PROVIDER_PAUSED"; provider: string; until: number | null; reason: string }
  | { code: "BREAKER_OPEN"; persona: string; until: number; failures: number }
  | { code: "BREAKER_PROBING"; persona: string; probeTaskId: number | null }
  | { code: "BUDGET_EXHAUSTED"; scope: BudgetScope; key: string; spentUsd: number; spentTokens: number; maxCostUsd: number | null; maxTokens: number | null }
  | { code: "RATE_LIMITED"; key: string; starts: number; perMs: number; until: number };

export interface PersonaGates {
  persona: string;
  /** Empty when the persona may claim. */
  reasons: GateReason[];
  /** When the earliest timed gate opens again (epoch ms), or null. */
  until: number | null;
}

export interface ProviderPause {
  provider: string;
  until: number | null;
  reason: string;
  taskId: number | null;
  since: number;
}

export interface BreakerRecord {
  persona: string;
  state: "closed" | "open" | "probing";
  consecutiveFailures: number;
  opens: number;
  openUntil: number | null;
  probeTaskId: number | null;
}

/** One all-time budget that covers a running attempt, with what its scope has spent in settled attempts. */
export interface BudgetLimit {
  scope: "task" | "goal";
  /** The task's or the goal's (root task's) id. */
  key: string;
  maxCostUsd: number | null;
  maxTokens: number | null;
  spentUsd: number;
  spentTokens: number;
}

/** The budgets a running attempt is checked against as it reports usage (src/supervisor/budget-watch.ts). */
export interface AttemptBudget {
  rootId: number;
  /** The task's set budget, else its policy's maxCostUsd / maxTokens; null: none. */
  task: BudgetLimit | null;
  /** Its goal's budget; null: none. */
  goal: BudgetLimit | null;
}

export interface EconomicsService {
  /** Each recorded attempt of a task, oldest first. */
  usageOf(params: { taskId: number }): Promise<UsageRecord[]>;
  /** Spend grouped by one of COST_GROUPS, largest cost first; rows from `since` (epoch ms) on. */
  cost(params: { by: CostGroup; since?: number; rootId?: number }): Promise<CostRow[]>;
  /** Everything recorded (or since `since`), one row with key "total". */
  total(params?: { since?: number; rootId?: number }): Promise<CostRow>;
  setBudget(params: SetBudgetParams): Promise<BudgetRecord>;
  /** Adds to an existing budget's limits. */
  raiseBudget(params: { scope: BudgetScope; key: string; addCostUsd?: number; addTokens?: number; now: number; by?: string | null }): Promise<BudgetRecord>;
  removeBudget(params: { scope: BudgetScope; key: string; now: number; by?: string | null }): Promise<boolean>;
  budgets(params: { now: number }): Promise<BudgetRecord[]>;
  /** What keeps a persona from claiming now; a read. */
  gates(params: { persona: string; now: number }): Promise<PersonaGates>;
  pauses(params: { now: number }): Promise<ProviderPause[]>;
  /** Ends a provider's pause now (false: it was not paused; nothing written). Writes a provider:resumed audit event. */
  resumeProvider(params: { provider: string; now: number; by?: string | null }): Promise<boolean>;
  breakers(): Promise<BreakerRecord[]>;
  /** Closes a persona's breaker now (false: it had none; nothing written). Writes a breaker:reset audit event. */
  resetBreaker(params: { persona: string; now: number; by?: string | null }): Promise<boolean>;
  setPrice(params: { model: string; price: ModelPrice; now: number }): Promise<void>;
  prices(): Promise<Record<string, ModelPrice>>;
  /** The task and goal budgets that cover a task, with their settled spend; a read (null: no such task). */
  attemptBudget(params: { taskId: number }): Promise<AttemptBudget | null>;
}
