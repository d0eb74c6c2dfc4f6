/**
 * The rules of the claim's economic gates (docs/ARCHITECTURE.md rule 15, docs/economics.md)
 * that need no database: a persona's settings, window arithmetic, what a claim may take
 * given the gates' rows, how a breaker moves on an outcome, when a provider pause ends,
 * and the words `roster why` uses (budgets' own rules: src/store/budget-rules.ts). Both stores read their
 * rows with their own SQL (src/store/sqlite/budgets.ts, src/store/postgres/gates.ts) and
 * decide here, so SQLite and PostgreSQL gate alike.
 */
import type { ErrorObject } from "../errors.js";
import { BUDGET_WINDOWS, type BreakerRecord, type BudgetScope, type BudgetWindow, type GateReason, type ProviderPause } from "./economics.js";

/** A rate limit with no `retryAfterMs` pauses its provider this long, in ms. */
export const RATE_LIMIT_PAUSE_MS_DEFAULT = 60_000;
/** A usage limit with no `resetAt` pauses its provider this long, in ms. */
export const USAGE_LIMIT_PAUSE_MS_DEFAULT = 30 * 60_000;
/** A breaker's first cooldown when the persona names none, in ms; it doubles per reopening. */
export const BREAKER_COOLDOWN_MS_DEFAULT = 60_000;
/** The longest cooldown a breaker grows to when the persona names none, in ms. */
export const BREAKER_MAX_COOLDOWN_MS_DEFAULT = 3_600_000;
/** A failure-rate breaker's window when the persona names none, in ms. */
export const BREAKER_WINDOW_MS_DEFAULT = 60_000;
/** Attempts a failure-rate breaker's window needs before its rate counts, when the persona names none. */
export const BREAKER_MIN_ATTEMPTS_DEFAULT = 10;

/** The windows spend is kept for, per persona, provider and overall (task and goal: all time only). */
export const SPEND_WINDOWS_MS = [0, BUDGET_WINDOWS.hour, BUDGET_WINDOWS.day] as const;

/** Start of the fixed window `[k·windowMs, (k+1)·windowMs)` holding `now`; 0 for an all-time window (0 ms). */
export function windowStart(now: number, windowMs: number): number {
  return windowMs === 0 ? 0 : Math.floor(now / windowMs) * windowMs;
}

export function windowName(ms: number): BudgetWindow {
  return ms === BUDGET_WINDOWS.day ? "day" : ms === BUDGET_WINDOWS.hour ? "hour" : "total";
}

// ---- a persona's settings ----------------------------------------------------------

/** A persona's economics settings, from its front matter (src/personas/schema.ts). */
export interface PersonaEconomics {
  provider: string;
  autoResume: boolean;
  /** failures: consecutive failures that open it (null: no such rule); rate: failures / attempts over a fixed window. */
  breaker: BreakerSettings | null;
  rate: { key: string; starts: number; perMs: number } | null;
}

export interface BreakerSettings {
  failures: number | null;
  cooldownMs: number;
  maxCooldownMs: number;
  rate: { failureRate: number; windowMs: number; minAttempts: number } | null;
}

/** The persona config fields the gates read, as each store's SQL returns them (JSON objects as text). */
export interface PersonaConfigShape {
  provider: string;
  /** SQLite gives 0/1 for a JSON boolean, PostgreSQL 'false'/'true'. */
  auto_resume: number | string | boolean | null;
  breaker: string | null;
  rate_limit: string | null;
}

export function economicsOf(persona: string, row: PersonaConfigShape | null): PersonaEconomics {
  const breaker =
    row?.breaker == null
      ? null
      : (JSON.parse(row.breaker) as { failures?: number; cooldownMs?: number; maxCooldownMs?: number; failureRate?: number; windowMs?: number; minAttempts?: number });
  const rate = row?.rate_limit == null ? null : (JSON.parse(row.rate_limit) as { starts: number; perMs: number; key?: string });
  const autoResume = row?.auto_resume;
  return {
    provider: row?.provider ?? `persona:${persona}`,
    autoResume: !(autoResume === 0 || autoResume === false || autoResume === "false"),
    breaker:
      breaker === null || (typeof breaker.failures !== "number" && typeof breaker.failureRate !== "number")
        ? null
        : {
            failures: typeof breaker.failures === "number" ? breaker.failures : null,
            cooldownMs: breaker.cooldownMs ?? BREAKER_COOLDOWN_MS_DEFAULT,
            maxCooldownMs: Math.max(breaker.maxCooldownMs ?? BREAKER_MAX_COOLDOWN_MS_DEFAULT, breaker.cooldownMs ?? BREAKER_COOLDOWN_MS_DEFAULT),
            rate:
              typeof breaker.failureRate !== "number"
                ? null
                : {
                    failureRate: breaker.failureRate,
                    windowMs: breaker.windowMs ?? BREAKER_WINDOW_MS_DEFAULT,
                    minAttempts: breaker.minAttempts ?? BREAKER_MIN_ATTEMPTS_DEFAULT,
                  },
          },
    rate: rate === null || typeof rate.starts !== "number" || typeof rate.perMs !== "number" ? null : { key: `rate:${rate.key ?? persona}`, starts: rate.starts, perMs: rate.perMs },
  };
}

// ---- the claim ---------------------------------------------------------------------

/** What the claim may take, decided before its statement runs. */
export interface ClaimGate {
  /** At most this many (0: claim nothing). */
  limit: number;
  /** Some tasks or goals are held: use the claim that skips them. */
  skipHeld: boolean;
  /** The breaker is half-open: the one task claimed is its probe. */
  probe: boolean;
  rateKey: string | null;
  rateWindowStart: number;
  /**
   * Rate windows before this start are done with and may be dropped. The one before the
   * current window is kept: a claim whose `now` was taken just before the window turned
   * (it waited for the window's lock, or its clock runs a little behind another host's)
   * must find that window's starts, not an empty row made anew.
   */
  rateTrimBefore: number;
  reasons: GateReason[];
  until: number | null;
}

/** A persona's pause and breaker, as the claim's one gate read returns them. */
export interface GateFacts {
  paused: boolean;
  pauseUntil: number | null;
  pauseReason: string | null;
  breakerState: "closed" | "open" | "probing" | null;
  openUntil: number | null;
  consecutiveFailures: number | null;
  probeTaskId: number | null;
  /** The probe task's status now. */
  probeStatus: string | null;
}

/** A persona or global window budget with what its current window spent. */
export interface WindowBudgetFacts {
  scope: BudgetScope;
  key: string;
  window_ms: number;
  max_cost_usd: number | null;
  max_tokens: number | null;
  spent_usd: number;
  spent_tokens: number;
  window_start: number;
}

function close(gate: ClaimGate, reason: GateReason, until: number | null): void {
  gate.reasons.push(reason);
  gate.limit = 0;
  if (until !== null) gate.until = gate.until === null ? until : Math.min(gate.until, until);
}

/** The gate from a persona's pause and breaker: closed, a probe of one, or open up to `limit`. */
export function gateOf(persona: string, settings: PersonaEconomics, f: GateFacts, now: number, limit: number): ClaimGate {
  const gate: ClaimGate = { limit, skipHeld: false, probe: false, rateKey: null, rateWindowStart: 0, rateTrimBefore: 0, reasons: [], until: null };
  if (f.paused && (f.pauseUntil === null || f.pauseUntil > now)) {
    close(gate, { code: "PROVIDER_PAUSED", provider: settings.provider, until: f.pauseUntil, reason: f.pauseReason ?? "" }, f.pauseUntil);
  }
  if (f.breakerState === "open") {
    if (f.openUntil !== null && f.openUntil > now) {
      close(gate, { code: "BREAKER_OPEN", persona, until: f.openUntil, failures: f.consecutiveFailures ?? 0 }, f.openUntil);
    } else {
      gate.probe = true;
      gate.limit = Math.min(gate.limit, 1);
    }
  } else if (f.breakerState === "probing") {
    const probeRunning = f.probeStatus === "claimed" || f.probeStatus === "in_progress";
    if (probeRunning) close(gate, { code: "BREAKER_PROBING", persona, probeTaskId: f.probeTaskId }, null);
    else {
      // The probe ended without a verdict (cancelled, released): another one goes.
      gate.probe = true;
      gate.limit = Math.min(gate.limit, 1);
    }
  }
  return gate;
}

/** Closes the gate for every persona or global window budget that is spent; it lifts when its window turns. */
export function closeForBudgets(gate: ClaimGate, budgets: readonly WindowBudgetFacts[]): void {
  for (const b of budgets) {
    if (!isExhausted(b.max_cost_usd, b.max_tokens, b.spent_usd, b.spent_tokens)) continue;
    close(
      gate,
      { code: "BUDGET_EXHAUSTED", scope: b.scope, key: b.key, spentUsd: b.spent_usd, spentTokens: b.spent_tokens, maxCostUsd: b.max_cost_usd, maxTokens: b.max_tokens },
      b.window_ms === 0 ? null : b.window_start + b.window_ms,
    );
  }
}

/**
 * A persona's `concurrency` is held by the store (docs/ARCHITECTURE.md rule 15): at most that
 * many of its tasks are leased (claimed or in progress) at once, across every claimant sharing
 * the store (supervisors on any host, MCP agents, `roster run`). Limits the claim to the room
 * left; a persona at its limit is not a gate with a reason (nothing is wrong: its slots are
 * busy), so the claim just takes nothing. `concurrency` null (a persona row without the
 * setting) leaves the limit as it is.
 */
export function limitByConcurrency(gate: ClaimGate, concurrency: number | null, running: number): void {
  if (concurrency === null) return;
  gate.limit = Math.min(gate.limit, Math.max(0, concurrency - running));
}

/** Limits the gate to the starts left in the rate window (`used` so far), or closes it until the window turns. */
export function limitByRate(gate: ClaimGate, rate: NonNullable<PersonaEconomics["rate"]>, used: number, now: number): void {
  const start = windowStart(now, rate.perMs);
  const left = rate.starts - used;
  if (left <= 0) {
    close(gate, { code: "RATE_LIMITED", key: rate.key, starts: rate.starts, perMs: rate.perMs, until: start + rate.perMs }, start + rate.perMs);
    return;
  }
  gate.limit = Math.min(gate.limit, left);
  gate.rateKey = rate.key;
  gate.rateWindowStart = start;
  gate.rateTrimBefore = start - rate.perMs;
}

// ---- settlement ----------------------------------------------------------------------

/** A breaker's stored row. */
export interface BreakerRow {
  persona_id: string;
  state: "closed" | "open" | "probing";
  consecutive_failures: number;
  opens: number;
  open_until: number | null;
  probe_task_id: number | null;
}

/** A breaker as `roster gates` shows it. */
export function toBreakerRecord(b: BreakerRow): BreakerRecord {
  return { persona: b.persona_id, state: b.state, consecutiveFailures: b.consecutive_failures, opens: b.opens, openUntil: b.open_until, probeTaskId: b.probe_task_id };
}

/** The `breaker:reset` event's data: the breaker as it was when a person reset it. */
export function breakerResetData(b: BreakerRow): { persona: string; state: BreakerRow["state"]; consecutiveFailures: number; openUntil: number | null } {
  return { persona: b.persona_id, state: b.state, consecutiveFailures: b.consecutive_failures, openUntil: b.open_until };
}

/** A provider pause row as both stores read it. */
export interface PauseRow {
  provider: string;
  until: number | null;
  reason: string;
  task_id: number | null;
  since: number;
}

export function toProviderPause(r: PauseRow): ProviderPause {
  return { provider: r.provider, until: r.until, reason: r.reason, taskId: r.task_id, since: r.since };
}

/** What a failed (or lost) attempt does to a breaker before its failure-rate window is counted. */
export function failureStep(breaker: BreakerSettings, prev: Pick<BreakerRow, "state" | "consecutive_failures" | "opens"> | undefined): { failures: number; reopening: boolean; trip: boolean } {
  const failures = (prev?.consecutive_failures ?? 0) + 1;
  const reopening = prev !== undefined && (prev.state === "probing" || prev.state === "open");
  return { failures, reopening, trip: reopening || (breaker.failures !== null && failures >= breaker.failures) };
}

/** True when a failure-rate window (attempts and failures counted so far) opens the breaker. */
export function rateTrips(rate: NonNullable<BreakerSettings["rate"]>, w: { attempts: number; failures: number }): boolean {
  return w.attempts >= rate.minAttempts && w.failures / w.attempts >= rate.failureRate;
}

/** The breaker opened (again): its cooldown doubles per opening since it last closed, up to the maximum. */
export function opening(breaker: BreakerSettings, prevOpens: number, reopening: boolean, now: number): { opens: number; until: number } {
  const opens = (reopening ? prevOpens : 0) + 1;
  return { opens, until: now + Math.min(breaker.maxCooldownMs, breaker.cooldownMs * 2 ** (opens - 1)) };
}

/** When a provider's pause ends (null: by hand, the persona turned auto-resume off). */
export function pauseUntil(settings: PersonaEconomics, p: { failure: "rate-limit" | "usage-limit"; retryAfterMs?: number; resetAt?: number; now: number }): number | null {
  if (!settings.autoResume) return null;
  return p.failure === "rate-limit" ? p.now + (p.retryAfterMs ?? RATE_LIMIT_PAUSE_MS_DEFAULT) : (p.resetAt ?? p.now + USAGE_LIMIT_PAUSE_MS_DEFAULT);
}

/**
 * The provider limit an error reports in `details.failure` (the agent adapters' classes), or null. Any
 * adapter may set them: a module adapter's thrown Error keeps its `details` (src/errors.ts toErrorObject),
 * a shell script prints a `::roster:limit` line (src/adapters/shell.ts); docs/economics.md, "Provider limits".
 */
export function providerLimit(error: ErrorObject): { failure: "rate-limit" | "usage-limit"; retryAfterMs?: number; resetAt?: number } | null {
  const d = error.details as { failure?: unknown; retryAfterMs?: unknown; resetAt?: unknown } | undefined;
  if (d === undefined || d === null || (d.failure !== "rate-limit" && d.failure !== "usage-limit")) return null;
  return {
    failure: d.failure,
    ...(typeof d.retryAfterMs === "number" && Number.isFinite(d.retryAfterMs) && d.retryAfterMs >= 0 ? { retryAfterMs: d.retryAfterMs } : {}),
    ...(typeof d.resetAt === "number" && Number.isFinite(d.resetAt) ? { resetAt: d.resetAt } : {}),
  };
}

/**
 * A persona's own fault (`details.failure: "persona"`: its CLI not found, its workspace's base
 * missing; src/adapters/agent/preflight.ts): not the task's (docs/ARCHITECTURE.md rule 12). The
 * attempt is given back uncounted and the persona's breaker opens at once (personaHold), whatever
 * its own breaker settings, so its tasks wait, none failed, until it is fixed: a persona reload
 * closes the breaker, or its probe finds it fixed.
 */
export function personaFault(error: ErrorObject): boolean {
  const d = error.details as { failure?: unknown } | undefined;
  return d !== undefined && d !== null && d.failure === "persona";
}

/** The breaker a persona fault opens: the persona's own settings' cooldowns, or the defaults; it trips on this one fault. */
export function personaHold(breaker: BreakerSettings | null): BreakerSettings {
  return { failures: 1, rate: null, cooldownMs: breaker?.cooldownMs ?? BREAKER_COOLDOWN_MS_DEFAULT, maxCooldownMs: breaker?.maxCooldownMs ?? BREAKER_MAX_COOLDOWN_MS_DEFAULT };
}

/** The spend rows one attempt's usage adds to: [scope, key, windowMs, windowStart]. */
export function spendKeys(p: { taskId: number; rootId: number; persona: string; provider: string; now: number }): Array<[string, string, number, number]> {
  const rows: Array<[string, string, number, number]> = [
    ["task", String(p.taskId), 0, 0],
    ["goal", String(p.rootId), 0, 0],
  ];
  for (const windowMs of SPEND_WINDOWS_MS) {
    const start = windowStart(p.now, windowMs);
    rows.push(["persona", p.persona, windowMs, start], ["provider", p.provider, windowMs, start], ["global", "", windowMs, start]);
  }
  return rows;
}

/** Whether spend reached a budget's dollar or token limit (null: no such limit). */
export function isExhausted(maxUsd: number | null, maxTokens: number | null, spentUsd: number, spentTokens: number): boolean {
  return (maxUsd !== null && spentUsd >= maxUsd) || (maxTokens !== null && spentTokens >= maxTokens);
}
