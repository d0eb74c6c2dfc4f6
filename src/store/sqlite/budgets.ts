import { RosterError } from "../../errors.js";
import {
  BUDGET_SCOPES,
  BUDGET_WINDOWS,
  type BreakerRecord,
  type AttemptBudget,
  type BudgetRecord,
  type BudgetScope,
  type BudgetWindow,
  type GateReason,
  type PersonaGates,
  type ProviderPause,
  type SetBudgetParams,
} from "../economics.js";
import type { WhyReason } from "../types.js";
import type { Db, TransactionRunner } from "./database.js";
import type { Recorded } from "./usage.js";

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

/** A persona's economics settings, from its front matter (src/personas/schema.ts). */
interface PersonaEconomics {
  provider: string;
  autoResume: boolean;
  /** failures: consecutive failures that open it (null: no such rule); rate: failures / attempts over a fixed window. */
  breaker: {
    failures: number | null;
    cooldownMs: number;
    maxCooldownMs: number;
    rate: { failureRate: number; windowMs: number; minAttempts: number } | null;
  } | null;
  rate: { key: string; starts: number; perMs: number } | null;
}

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
  reasons: GateReason[];
  until: number | null;
}

const scopeWindowMs = (window: BudgetWindow) => BUDGET_WINDOWS[window];
const windowName = (ms: number): BudgetWindow => (ms === BUDGET_WINDOWS.day ? "day" : ms === BUDGET_WINDOWS.hour ? "hour" : "total");

/**
 * The gates the claim checks (docs/ARCHITECTURE.md rule 15) and the rules that move them at
 * settlement: budgets and the holds they put on tasks and goals, provider pauses,
 * per-persona circuit breakers, and starts-per-window rate limits. Every method
 * runs inside the caller's transaction, so several processes sharing the database
 * see one state.
 */
export class EconomicsStatements {
  private readonly gateRow;
  private readonly windowBudgets;
  private readonly rateUsed;
  private readonly rateAdd;
  private readonly rateTrim;
  private readonly setProbe;
  private readonly personaConfig;
  private readonly taskLimits;
  private readonly insertHold;
  private readonly deleteHold;
  private readonly upsertBudget;
  private readonly budgetRow;
  private readonly deleteBudget;
  private readonly listBudgets;
  private readonly policyHolds;
  private readonly spendRow;
  private readonly pauseUpsert;
  private readonly pauseDelete;
  private readonly pausesStmt;
  private readonly breakerRow;
  private readonly breakerUpsert;
  private readonly breakersStmt;
  private readonly breakerDelete;
  private readonly taskPolicyLimits;
  private readonly insertEvent;
  private readonly taskRoot;
  private readonly personaExists;
  private readonly holdsOf;
  private readonly windowAdd;
  private readonly windowClear;
  private readonly keyOf;

  constructor(db: Db, private readonly tx: TransactionRunner) {
    const econ = `coalesce(p.config ->> '$.provider', 'persona:' || p.id) AS provider, p.config ->> '$.providerAutoResume' AS auto_resume,
      p.config ->> '$.breaker' AS breaker, p.config ->> '$.rateLimit' AS rate_limit`;
    this.personaConfig = db.prepare(`SELECT ${econ} FROM personas p WHERE p.id = ?`);
    // One row per claim: the persona's settings and every gate of it, by primary keys.
    this.gateRow = db.prepare(`
      SELECT ${econ},
        pp.provider IS NOT NULL AS paused, pp.until AS pause_until, pp.reason AS pause_reason,
        b.state AS breaker_state, b.open_until, b.consecutive_failures, b.probe_task_id,
        (SELECT status FROM task_status WHERE task_id = b.probe_task_id) AS probe_status,
        EXISTS (SELECT 1 FROM budget_holds) AS holds,
        EXISTS (SELECT 1 FROM budgets WHERE scope IN ('persona','global')) AS window_budgets,
        EXISTS (SELECT 1 FROM concurrency_keys INDEXED BY concurrency_keys_full WHERE running >= max_running) AS full_keys
      FROM personas p
      LEFT JOIN provider_pauses pp ON pp.provider = coalesce(p.config ->> '$.provider', 'persona:' || p.id)
      LEFT JOIN breakers b ON b.persona_id = p.id
      WHERE p.id = @persona`);
    this.windowBudgets = db.prepare(`
      SELECT b.scope, b.key, b.window_ms, b.max_cost_usd, b.max_tokens, coalesce(s.cost_usd, 0) AS spent_usd, coalesce(s.tokens, 0) AS spent_tokens,
        CASE WHEN b.window_ms = 0 THEN 0 ELSE (CAST(@now AS INTEGER) / b.window_ms) * b.window_ms END AS window_start
      FROM budgets b LEFT JOIN spend s ON s.scope = b.scope AND s.key = b.key AND s.window_ms = b.window_ms
        AND s.window_start = CASE WHEN b.window_ms = 0 THEN 0 ELSE (CAST(@now AS INTEGER) / b.window_ms) * b.window_ms END
      WHERE (b.scope = 'persona' AND b.key = @persona) OR b.scope = 'global'`);
    this.rateUsed = db.prepare("SELECT starts FROM rate_windows WHERE key = ? AND window_start = ?").pluck();
    this.rateAdd = db.prepare(`
      INSERT INTO rate_windows (key, window_start, starts) VALUES (@key, @start, @n)
      ON CONFLICT (key, window_start) DO UPDATE SET starts = starts + excluded.starts`);
    this.rateTrim = db.prepare("DELETE FROM rate_windows WHERE key = ? AND window_start < ?");
    this.setProbe = db.prepare("UPDATE breakers SET state = 'probing', probe_task_id = @taskId, updated_at = @now WHERE persona_id = @persona");
    this.taskLimits = db.prepare(`
      SELECT
        CASE WHEN bt.scope IS NULL THEN t.retry_policy ->> '$.maxCostUsd' ELSE bt.max_cost_usd END AS task_usd,
        CASE WHEN bt.scope IS NULL THEN t.retry_policy ->> '$.maxTokens' ELSE bt.max_tokens END AS task_tokens,
        bg.max_cost_usd AS goal_usd, bg.max_tokens AS goal_tokens, bg.scope IS NOT NULL AS has_goal,
        st.cost_usd AS task_spent_usd, st.tokens AS task_spent_tokens, sg.cost_usd AS goal_spent_usd, sg.tokens AS goal_spent_tokens,
        EXISTS (SELECT 1 FROM budget_holds WHERE scope = 'task' AND key = @taskId) AS task_held,
        EXISTS (SELECT 1 FROM budget_holds WHERE scope = 'goal' AND key = @rootId) AS goal_held
      FROM tasks t
      LEFT JOIN budgets bt ON bt.scope = 'task' AND bt.key = @task
      LEFT JOIN budgets bg ON bg.scope = 'goal' AND bg.key = @goal
      LEFT JOIN spend st ON st.scope = 'task' AND st.key = @task AND st.window_ms = 0 AND st.window_start = 0
      LEFT JOIN spend sg ON sg.scope = 'goal' AND sg.key = @goal AND sg.window_ms = 0 AND sg.window_start = 0
      WHERE t.id = @taskId`);
    this.taskPolicyLimits = db.prepare("SELECT retry_policy ->> '$.maxCostUsd' AS usd, retry_policy ->> '$.maxTokens' AS tokens FROM tasks WHERE id = ?");
    this.spendRow = db.prepare("SELECT cost_usd, tokens FROM spend WHERE scope = ? AND key = ? AND window_ms = ? AND window_start = ?");
    this.insertHold = db.prepare("INSERT INTO budget_holds (scope, key, since) VALUES (?, ?, ?) ON CONFLICT DO NOTHING");
    this.deleteHold = db.prepare("DELETE FROM budget_holds WHERE scope = ? AND key = ?");
    this.upsertBudget = db.prepare(`
      INSERT INTO budgets (scope, key, window_ms, max_cost_usd, max_tokens, updated_at) VALUES (@scope, @key, @windowMs, @maxCostUsd, @maxTokens, @now)
      ON CONFLICT (scope, key) DO UPDATE SET window_ms = excluded.window_ms, max_cost_usd = excluded.max_cost_usd,
        max_tokens = excluded.max_tokens, updated_at = excluded.updated_at`);
    this.budgetRow = db.prepare("SELECT * FROM budgets WHERE scope = ? AND key = ?");
    this.deleteBudget = db.prepare("DELETE FROM budgets WHERE scope = ? AND key = ?");
    this.listBudgets = db.prepare("SELECT * FROM budgets ORDER BY scope, key");
    this.policyHolds = db.prepare(`
      SELECT h.key FROM budget_holds h WHERE h.scope = 'task'
        AND NOT EXISTS (SELECT 1 FROM budgets b WHERE b.scope = 'task' AND b.key = CAST(h.key AS TEXT)) ORDER BY h.key`);
    this.pauseUpsert = db.prepare(`
      INSERT INTO provider_pauses (provider, until, reason, task_id, since) VALUES (@provider, @until, @reason, @taskId, @now)
      ON CONFLICT (provider) DO UPDATE SET until = CASE WHEN provider_pauses.until IS NULL OR excluded.until IS NULL THEN NULL
        ELSE max(provider_pauses.until, excluded.until) END, reason = excluded.reason, task_id = excluded.task_id`);
    this.pauseDelete = db.prepare("DELETE FROM provider_pauses WHERE provider = ?");
    this.pausesStmt = db.prepare("SELECT * FROM provider_pauses WHERE until IS NULL OR until > ? ORDER BY provider");
    this.breakerRow = db.prepare("SELECT * FROM breakers WHERE persona_id = ?");
    this.breakerUpsert = db.prepare(`
      INSERT INTO breakers (persona_id, state, consecutive_failures, opens, open_until, probe_task_id, updated_at)
      VALUES (@persona, @state, @failures, @opens, @openUntil, NULL, @now)
      ON CONFLICT (persona_id) DO UPDATE SET state = excluded.state, consecutive_failures = excluded.consecutive_failures,
        opens = excluded.opens, open_until = excluded.open_until, probe_task_id = NULL, updated_at = excluded.updated_at`);
    this.breakersStmt = db.prepare("SELECT * FROM breakers ORDER BY persona_id");
    this.breakerDelete = db.prepare("DELETE FROM breakers WHERE persona_id = ?");
    // Audit of the commands that move a gate by hand (budget set/raise/rm, provider resume, breaker reset):
    // task_id is the task or goal for their budgets, NULL otherwise.
    this.insertEvent = db.prepare("INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES (@taskId, @type, @now, @by, NULL, @data)");
    this.taskRoot = db.prepare("SELECT coalesce(root_id, id) AS root_id FROM tasks WHERE id = ?").pluck();
    this.personaExists = db.prepare("SELECT 1 FROM personas WHERE id = ?").pluck();
    this.holdsOf = db.prepare(`
      SELECT h.scope, h.key, h.since, s.cost_usd, s.tokens FROM budget_holds h
      LEFT JOIN spend s ON s.scope = h.scope AND s.key = CAST(h.key AS TEXT) AND s.window_ms = 0 AND s.window_start = 0
      WHERE (h.scope = 'task' AND h.key = @taskId) OR (h.scope = 'goal' AND h.key = @rootId)`);
    this.windowAdd = db.prepare(`
      INSERT INTO breaker_windows (persona_id, window_start, attempts, failures) VALUES (@persona, @start, @attempts, @failures)
      ON CONFLICT (persona_id, window_start) DO UPDATE SET attempts = attempts + excluded.attempts, failures = failures + excluded.failures
      RETURNING attempts, failures`);
    this.windowClear = db.prepare("DELETE FROM breaker_windows WHERE persona_id = @persona AND window_start < @before");
    this.keyOf = db.prepare(`
      SELECT k.key, k.running, k.max_running,
        (SELECT json_group_array(s.task_id) FROM task_keys tk2 JOIN task_status s ON s.task_id = tk2.task_id
          WHERE tk2.key = k.key AND s.status IN ('claimed','in_progress')) AS holders
      FROM task_keys tk JOIN concurrency_keys k ON k.key = tk.key WHERE tk.task_id = ?`);
  }

  // ---- the claim ----------------------------------------------------------------

  /** What a claim of `persona` may take now. A read: the claim calls it inside its transaction. */
  gate(persona: string, now: number, limit: number): ClaimGate {
    const row = this.gateRow.get({ persona }) as GateRowShape | undefined;
    const gate: ClaimGate = { limit, skipHeld: false, probe: false, rateKey: null, rateWindowStart: 0, reasons: [], until: null };
    if (row === undefined) return gate;
    const settings = economicsOf(persona, row);
    const close = (reason: GateReason, until: number | null) => {
      gate.reasons.push(reason);
      gate.limit = 0;
      if (until !== null) gate.until = gate.until === null ? until : Math.min(gate.until, until);
    };
    if (row.paused === 1 && (row.pause_until === null || row.pause_until > now)) {
      close({ code: "PROVIDER_PAUSED", provider: settings.provider, until: row.pause_until, reason: row.pause_reason ?? "" }, row.pause_until);
    }
    if (row.breaker_state === "open") {
      if (row.open_until !== null && row.open_until > now) {
        close({ code: "BREAKER_OPEN", persona, until: row.open_until, failures: row.consecutive_failures ?? 0 }, row.open_until);
      } else {
        gate.probe = true;
        gate.limit = Math.min(gate.limit, 1);
      }
    } else if (row.breaker_state === "probing") {
      const probeRunning = row.probe_status === "claimed" || row.probe_status === "in_progress";
      if (probeRunning) close({ code: "BREAKER_PROBING", persona, probeTaskId: row.probe_task_id }, null);
      else {
        // The probe ended without a verdict (cancelled, released): another one goes.
        gate.probe = true;
        gate.limit = Math.min(gate.limit, 1);
      }
    }
    if (row.window_budgets === 1) {
      for (const b of this.windowBudgets.all({ persona, now }) as WindowBudgetRow[]) {
        if (!isExhausted(b.max_cost_usd, b.max_tokens, b.spent_usd, b.spent_tokens)) continue;
        close(
          { code: "BUDGET_EXHAUSTED", scope: b.scope, key: b.key, spentUsd: b.spent_usd, spentTokens: b.spent_tokens, maxCostUsd: b.max_cost_usd, maxTokens: b.max_tokens },
          b.window_ms === 0 ? null : b.window_start + b.window_ms,
        );
      }
    }
    if (settings.rate !== null && gate.limit > 0) {
      const start = Math.floor(now / settings.rate.perMs) * settings.rate.perMs;
      const used = (this.rateUsed.get(settings.rate.key, start) as number | undefined) ?? 0;
      const left = settings.rate.starts - used;
      if (left <= 0) close({ code: "RATE_LIMITED", key: settings.rate.key, starts: settings.rate.starts, perMs: settings.rate.perMs, until: start + settings.rate.perMs }, start + settings.rate.perMs);
      else {
        gate.limit = Math.min(gate.limit, left);
        gate.rateKey = settings.rate.key;
        gate.rateWindowStart = start;
      }
    }
    // Held tasks and goals, and tasks whose concurrency key is at its limit, are skipped by the claim's seek.
    gate.skipHeld = row.holds === 1 || row.full_keys === 1;
    return gate;
  }

  /** After the claim statement: counts the starts in the rate window and marks the breaker's probe. */
  claimed(persona: string, gate: ClaimGate, taskIds: number[], now: number): void {
    if (taskIds.length === 0) return;
    if (gate.rateKey !== null) {
      this.rateAdd.run({ key: gate.rateKey, start: gate.rateWindowStart, n: taskIds.length });
      this.rateTrim.run(gate.rateKey, gate.rateWindowStart);
    }
    if (gate.probe) {
      this.setProbe.run({ persona, taskId: taskIds[0]!, now });
      this.tx.emit("breaker:probing", { persona, taskId: taskIds[0]! });
    }
  }

  /** Gates of a persona for `roster why` and status, with the tasks it skips. */
  personaGates(persona: string, now: number): PersonaGates {
    const gate = this.gate(persona, now, Number.MAX_SAFE_INTEGER);
    return { persona, reasons: gate.reasons, until: gate.until };
  }

  /** The task and goal budgets of a running attempt, with their settled spend (one read of the same row the settlement reads). */
  attemptBudget(taskId: number): AttemptBudget | null {
    const rootId = this.taskRoot.get(taskId) as number | undefined;
    if (rootId === undefined) return null;
    const l = this.taskLimits.get({ taskId, rootId, task: String(taskId), goal: String(rootId) }) as TaskLimitsRow | undefined;
    if (l === undefined) return null;
    const limit = (scope: "task" | "goal", key: number, usd: number | null, tokens: number | null, spentUsd: number | null, spentTokens: number | null) =>
      usd === null && tokens === null ? null : { scope, key: String(key), maxCostUsd: usd, maxTokens: tokens, spentUsd: spentUsd ?? 0, spentTokens: spentTokens ?? 0 };
    return {
      rootId,
      task: limit("task", taskId, l.task_usd, l.task_tokens, l.task_spent_usd, l.task_spent_tokens),
      goal: l.has_goal === 1 ? limit("goal", rootId, l.goal_usd, l.goal_tokens, l.goal_spent_usd, l.goal_spent_tokens) : null,
    };
  }

  /** Whether a task or its goal has a budget at all (an attempt aborted for its budget is given back uncounted only then). */
  budgeted(taskId: number): boolean {
    const b = this.attemptBudget(taskId);
    return b !== null && (b.task !== null || b.goal !== null);
  }

  // ---- settlement -----------------------------------------------------------------

  /** After usage is recorded: holds the task or its goal when its budget is now spent. */
  afterUsage(r: Recorded, now: number): void {
    // One read for both scopes (limits, spend, holds); a write only when a hold comes or goes.
    const l = this.taskLimits.get({ taskId: r.taskId, rootId: r.rootId, task: String(r.taskId), goal: String(r.rootId) }) as TaskLimitsRow | undefined;
    if (l === undefined) return;
    if (l.task_usd !== null || l.task_tokens !== null) {
      this.moveHold("task", r.taskId, isExhausted(l.task_usd, l.task_tokens, l.task_spent_usd ?? 0, l.task_spent_tokens ?? 0), l.task_held === 1, now);
    }
    if (l.has_goal === 1) this.moveHold("goal", r.rootId, isExhausted(l.goal_usd, l.goal_tokens, l.goal_spent_usd ?? 0, l.goal_spent_tokens ?? 0), l.goal_held === 1, now);
  }

  /** A provider told the attempt to slow down: pause every persona on its account. Returns when the pause ends (null: by hand). */
  pauseProvider(p: { persona: string; taskId: number; failure: "rate-limit" | "usage-limit"; retryAfterMs?: number; resetAt?: number; now: number }): number | null {
    const row = this.personaConfig.get(p.persona) as PersonaConfigShape | undefined;
    const settings = economicsOf(p.persona, row ?? null);
    let until: number | null =
      p.failure === "rate-limit"
        ? p.now + (p.retryAfterMs ?? RATE_LIMIT_PAUSE_MS_DEFAULT)
        : p.resetAt ?? p.now + USAGE_LIMIT_PAUSE_MS_DEFAULT;
    if (!settings.autoResume) until = null;
    this.pauseUpsert.run({ provider: settings.provider, until, reason: p.failure, taskId: p.taskId, now: p.now });
    this.tx.emit("provider:paused", { provider: settings.provider, until, reason: p.failure });
    return until;
  }

  /** A failed (or lost) attempt: counts toward the persona's breaker, or reopens it after a failed probe. */
  attemptFailed(persona: string, taskId: number, now: number): void {
    const settings = economicsOf(persona, (this.personaConfig.get(persona) as PersonaConfigShape | undefined) ?? null);
    if (settings.breaker === null) return;
    const b = this.breakerRow.get(persona) as BreakerRow | undefined;
    const failures = (b?.consecutive_failures ?? 0) + 1;
    const reopening = b !== undefined && (b.state === "probing" || b.state === "open");
    let trip = reopening || (settings.breaker.failures !== null && failures >= settings.breaker.failures);
    const rate = settings.breaker.rate;
    if (!trip && rate !== null) {
      const w = this.windowAdd.get({ persona, start: Math.floor(now / rate.windowMs) * rate.windowMs, attempts: 1, failures: 1 }) as { attempts: number; failures: number };
      trip = w.attempts >= rate.minAttempts && w.failures / w.attempts >= rate.failureRate;
    }
    if (!trip) {
      this.breakerUpsert.run({ persona, state: "closed", failures, opens: 0, openUntil: null, now });
      return;
    }
    // A fresh window after the breaker closes again: the failures that opened it are paid for.
    if (rate !== null) this.windowClear.run({ persona, before: Number.MAX_SAFE_INTEGER });
    const opens = (reopening ? b!.opens : 0) + 1;
    const cooldown = Math.min(settings.breaker.maxCooldownMs, settings.breaker.cooldownMs * 2 ** (opens - 1));
    const until = now + cooldown;
    this.breakerUpsert.run({ persona, state: "open", failures, opens, openUntil: until, now });
    this.tx.emit("breaker:opened", { persona, until, failures, taskId });
  }

  /**
   * `count` completed attempts close the persona's breaker, and count in a failure-rate
   * breaker's window. Cheap when there is none (two primary-key reads).
   */
  attemptSucceeded(persona: string, now?: number, count = 1): void {
    if (now !== undefined) {
      const rate = economicsOf(persona, (this.personaConfig.get(persona) as PersonaConfigShape | undefined) ?? null).breaker?.rate ?? null;
      if (rate !== null) {
        const start = Math.floor(now / rate.windowMs) * rate.windowMs;
        this.windowAdd.get({ persona, start, attempts: count, failures: 0 });
        this.windowClear.run({ persona, before: start });
      }
    }
    const b = this.breakerRow.get(persona) as BreakerRow | undefined;
    if (b === undefined || (b.state === "closed" && b.consecutive_failures === 0)) return;
    this.breakerDelete.run(persona);
    if (b.state !== "closed") this.tx.emit("breaker:closed", { persona });
  }

  // ---- commands -------------------------------------------------------------------

  setBudget(p: SetBudgetParams): BudgetRecord {
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
    this.checkTarget(scope, key);
    this.upsertBudget.run({ scope, key, windowMs: scopeWindowMs(window), maxCostUsd: p.maxCostUsd ?? null, maxTokens: p.maxTokens ?? null, now: p.now });
    const record = this.afterBudgetChange(scope, key, p.now);
    this.audit(scope, key, "budget:set", p.now, p.by, { window, maxCostUsd: record.maxCostUsd, maxTokens: record.maxTokens });
    return record;
  }

  raiseBudget(p: { scope: BudgetScope; key: string; addCostUsd?: number; addTokens?: number; now: number; by?: string | null }): BudgetRecord {
    const { scope, key } = checkScope(p.scope, p.key);
    checkLimit("addCostUsd", p.addCostUsd, false);
    checkLimit("addTokens", p.addTokens, true);
    if ((p.addCostUsd ?? null) === null && (p.addTokens ?? null) === null) {
      throw new RosterError("VALIDATION", "a raise needs an amount: addCostUsd (--usd) or addTokens (--tokens)", { details: { field: "addCostUsd" } });
    }
    this.checkTarget(scope, key);
    let row = this.budgetRow.get(scope, key) as BudgetRow | undefined;
    if (row === undefined && scope === "task") {
      const policy = this.taskPolicyLimits.get(Number(key)) as { usd: number | null; tokens: number | null } | undefined;
      if (policy !== undefined && (policy.usd !== null || policy.tokens !== null)) {
        row = { scope, key, window_ms: 0, max_cost_usd: policy.usd, max_tokens: policy.tokens, updated_at: p.now };
      }
    }
    if (row === undefined) {
      throw new RosterError("INVALID_STATE", `${scope} ${key || "(global)"}: has no budget to raise; set one with \`roster budget set\``, { details: { field: "scope" } });
    }
    if (p.addCostUsd !== undefined && row.max_cost_usd === null) row.max_cost_usd = 0;
    if (p.addTokens !== undefined && row.max_tokens === null) row.max_tokens = 0;
    this.upsertBudget.run({
      scope,
      key,
      windowMs: row.window_ms,
      maxCostUsd: row.max_cost_usd === null ? null : row.max_cost_usd + (p.addCostUsd ?? 0),
      maxTokens: row.max_tokens === null ? null : row.max_tokens + (p.addTokens ?? 0),
      now: p.now,
    });
    const record = this.afterBudgetChange(scope, key, p.now);
    this.audit(scope, key, "budget:raised", p.now, p.by, { addCostUsd: p.addCostUsd ?? null, addTokens: p.addTokens ?? null, maxCostUsd: record.maxCostUsd, maxTokens: record.maxTokens });
    return record;
  }

  removeBudget(p: { scope: BudgetScope; key: string; now: number; by?: string | null }): boolean {
    const checked = checkScope(p.scope, p.key);
    const removed = this.deleteBudget.run(checked.scope, checked.key).changes > 0;
    if (removed) {
      this.afterBudgetChange(checked.scope, checked.key, p.now);
      this.audit(checked.scope, checked.key, "budget:removed", p.now, p.by, {});
    }
    return removed;
  }

  budgets(now: number): BudgetRecord[] {
    const out = (this.listBudgets.all() as BudgetRow[]).map((row) => this.record(row, now, "set"));
    for (const key of this.policyHolds.pluck().all() as number[]) {
      const policy = this.taskPolicyLimits.get(key) as { usd: number | null; tokens: number | null } | undefined;
      out.push(this.record({ scope: "task", key: String(key), window_ms: 0, max_cost_usd: policy?.usd ?? null, max_tokens: policy?.tokens ?? null, updated_at: now }, now, "policy"));
    }
    return out;
  }

  pauses(now: number): ProviderPause[] {
    return (this.pausesStmt.all(now) as Array<{ provider: string; until: number | null; reason: string; task_id: number | null; since: number }>).map((r) => ({
      provider: r.provider,
      until: r.until,
      reason: r.reason,
      taskId: r.task_id,
      since: r.since,
    }));
  }

  resumeProvider(p: { provider: string; now: number; by?: string | null }): boolean {
    const provider = p.provider;
    const resumed = this.pauseDelete.run(provider).changes > 0;
    if (resumed) {
      this.insertEvent.run({ taskId: null, type: "provider:resumed", now: p.now, by: p.by ?? null, data: JSON.stringify({ provider }) });
      this.tx.emit("provider:resumed", { provider });
      this.tx.emit("task:ready", { count: 1 });
    }
    return resumed;
  }

  breakers(): BreakerRecord[] {
    return (this.breakersStmt.all() as BreakerRow[]).map((b) => ({
      persona: b.persona_id,
      state: b.state,
      consecutiveFailures: b.consecutive_failures,
      opens: b.opens,
      openUntil: b.open_until,
      probeTaskId: b.probe_task_id,
    }));
  }

  resetBreaker(p: { persona: string; now: number; by?: string | null }): boolean {
    const persona = p.persona;
    const b = this.breakerRow.get(persona) as BreakerRow | undefined;
    if (b === undefined) return false;
    this.breakerDelete.run(persona);
    this.insertEvent.run({
      taskId: null,
      type: "breaker:reset",
      now: p.now,
      by: p.by ?? null,
      data: JSON.stringify({ persona, state: b.state, consecutiveFailures: b.consecutive_failures, openUntil: b.open_until }),
    });
    this.tx.emit("breaker:closed", { persona });
    this.tx.emit("task:ready", { count: 1 });
    return true;
  }

  /**
   * `roster why`'s gate reasons for a task that could run but for a gate: its task or
   * goal budget held, and its persona's closed gates (provider pause, breaker, window
   * budget, rate window), each with when it lifts.
   */
  whyReasons(task: { id: number; persona: string; status: string }, now: number): WhyReason[] {
    if (task.status !== "pending" && task.status !== "waiting") return [];
    const out: WhyReason[] = [];
    const rootId = (this.taskRoot.get(task.id) as number | undefined) ?? task.id;
    for (const h of this.holdsOf.all({ taskId: task.id, rootId }) as Array<{ scope: "task" | "goal"; key: number; since: number; cost_usd: number | null; tokens: number | null }>) {
      const whose = h.scope === "task" ? "its own" : `its goal's (task ${h.key})`;
      out.push({
        code: "budget_exhausted",
        message: `${whose} budget is spent (${usd(h.cost_usd ?? 0)}, ${h.tokens ?? 0} tokens) since ${new Date(h.since).toISOString()}; it lifts when raised (\`roster budget raise --${h.scope} ${h.key} --usd N\`)`,
        data: { scope: h.scope, key: String(h.key), spentUsd: h.cost_usd ?? 0, spentTokens: h.tokens ?? 0, since: h.since, until: null },
      });
    }
    for (const r of this.gate(task.persona, now, Number.MAX_SAFE_INTEGER).reasons) out.push(whyOf(r, now));
    const key = this.keyOf.get(task.id) as { key: string; running: number; max_running: number; holders: string } | undefined;
    if (key !== undefined && key.running >= key.max_running) {
      const holders = JSON.parse(key.holders) as number[];
      out.push({
        code: "concurrency_key_full",
        message: `its concurrency key "${key.key}" is at its limit (${key.running} of ${key.max_running} running: ${holders.map((id) => `task ${id}`).join(", ")}); it lifts when one of them ends`,
        data: { key: key.key, running: key.running, limit: key.max_running, holders, until: null },
      });
    }
    return out;
  }

  // ---- internals ------------------------------------------------------------------

  /** A budget's target must exist: a task, a goal (a root task), a persona. */
  private checkTarget(scope: BudgetScope, key: string): void {
    if (scope === "task" || scope === "goal") {
      const root = this.taskRoot.get(Number(key)) as number | undefined;
      if (root === undefined) throw new RosterError("TASK_NOT_FOUND", `${scope}: task ${key} does not exist`, { details: { field: scope, taskId: Number(key) } });
      if (scope === "goal" && root !== Number(key)) {
        throw new RosterError("VALIDATION", `goal: task ${key} is not a goal (a root task); its goal is task ${root}`, { details: { field: "goal" } });
      }
    } else if (scope === "persona" && this.personaExists.get(key) === undefined) {
      throw new RosterError("PERSONA_NOT_FOUND", `persona: unknown persona "${key}"`, { details: { field: "persona" } });
    }
  }

  private audit(scope: BudgetScope, key: string, type: string, now: number, by: string | null | undefined, data: Record<string, unknown>): void {
    const taskId = scope === "task" || scope === "goal" ? Number(key) : null;
    this.insertEvent.run({ taskId, type, now, by: by ?? null, data: JSON.stringify({ scope, key, ...data }) });
  }


  private afterBudgetChange(scope: BudgetScope, key: string, now: number): BudgetRecord {
    let row = this.budgetRow.get(scope, key) as BudgetRow | undefined;
    let source: BudgetRecord["source"] = "set";
    if (row === undefined && scope === "task") {
      const policy = this.taskPolicyLimits.get(Number(key)) as { usd: number | null; tokens: number | null } | undefined;
      row = { scope, key, window_ms: 0, max_cost_usd: policy?.usd ?? null, max_tokens: policy?.tokens ?? null, updated_at: now };
      source = "policy";
    }
    row ??= { scope, key, window_ms: 0, max_cost_usd: null, max_tokens: null, updated_at: now };
    if (scope === "task" || scope === "goal") this.recheck(scope, Number(key), row.max_cost_usd, row.max_tokens, now);
    else this.tx.emit("task:ready", { count: 1 });
    return this.record(row, now, source);
  }

  /** Puts a hold on (or lifts it from) a task or goal whose all-time spend reached (or is under) its limit. */
  private moveHold(scope: "task" | "goal", id: number, exhausted: boolean, held: boolean, now: number): void {
    if (exhausted && !held) {
      this.insertHold.run(scope, id, now);
      this.tx.emit("budget:exhausted", { scope, key: String(id) });
    } else if (!exhausted && held) {
      this.deleteHold.run(scope, id);
      this.tx.emit("task:ready", { count: 1 });
    }
  }

  private recheck(scope: "task" | "goal", id: number, maxUsd: number | null, maxTokens: number | null, now: number): void {
    const spent = this.spendRow.get(scope, String(id), 0, 0) as { cost_usd: number; tokens: number } | undefined;
    if (isExhausted(maxUsd, maxTokens, spent?.cost_usd ?? 0, spent?.tokens ?? 0)) {
      if (this.insertHold.run(scope, id, now).changes > 0) this.tx.emit("budget:exhausted", { scope, key: String(id) });
    } else if (this.deleteHold.run(scope, id).changes > 0) {
      this.tx.emit("task:ready", { count: 1 });
    }
  }

  private record(row: BudgetRow, now: number, source: BudgetRecord["source"]): BudgetRecord {
    const start = row.window_ms === 0 ? 0 : Math.floor(now / row.window_ms) * row.window_ms;
    const spent = this.spendRow.get(row.scope, row.key, row.window_ms, start) as { cost_usd: number; tokens: number } | undefined;
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
}

function usd(n: number): string {
  return `$${n.toFixed(n >= 1 ? 2 : 4)}`;
}

function lifts(until: number | null, now: number): string {
  return until === null ? "until lifted by hand" : `until ${new Date(until).toISOString()} (in ${Math.max(0, Math.ceil((until - now) / 1000))} s)`;
}

/** A claim gate as a `roster why` reason (lowercase codes, reserved in src/store/why.ts). */
function whyOf(r: GateReason, now: number): WhyReason {
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

function isExhausted(maxUsd: number | null, maxTokens: number | null, spentUsd: number, spentTokens: number): boolean {
  return (maxUsd !== null && spentUsd >= maxUsd) || (maxTokens !== null && spentTokens >= maxTokens);
}

function checkScope(scope: BudgetScope, key: string): { scope: BudgetScope; key: string } {
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

interface PersonaConfigShape {
  provider: string;
  auto_resume: number | null;
  breaker: string | null;
  rate_limit: string | null;
}

function economicsOf(persona: string, row: PersonaConfigShape | null): PersonaEconomics {
  const breaker =
    row?.breaker == null
      ? null
      : (JSON.parse(row.breaker) as { failures?: number; cooldownMs?: number; maxCooldownMs?: number; failureRate?: number; windowMs?: number; minAttempts?: number });
  const rate = row?.rate_limit == null ? null : (JSON.parse(row.rate_limit) as { starts: number; perMs: number; key?: string });
  return {
    provider: row?.provider ?? `persona:${persona}`,
    autoResume: row?.auto_resume !== 0,
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

interface GateRowShape extends PersonaConfigShape {
  paused: number;
  pause_until: number | null;
  pause_reason: string | null;
  breaker_state: "closed" | "open" | "probing" | null;
  open_until: number | null;
  consecutive_failures: number | null;
  probe_task_id: number | null;
  probe_status: string | null;
  holds: number;
  window_budgets: number;
  full_keys: number;
}

interface WindowBudgetRow {
  scope: BudgetScope;
  key: string;
  window_ms: number;
  max_cost_usd: number | null;
  max_tokens: number | null;
  spent_usd: number;
  spent_tokens: number;
  window_start: number;
}

interface TaskLimitsRow {
  task_usd: number | null;
  task_tokens: number | null;
  goal_usd: number | null;
  goal_tokens: number | null;
  has_goal: number;
  task_spent_usd: number | null;
  task_spent_tokens: number | null;
  goal_spent_usd: number | null;
  goal_spent_tokens: number | null;
  task_held: number;
  goal_held: number;
}

interface BudgetRow {
  scope: BudgetScope;
  key: string;
  window_ms: number;
  max_cost_usd: number | null;
  max_tokens: number | null;
  updated_at: number;
}

interface BreakerRow {
  persona_id: string;
  state: "closed" | "open" | "probing";
  consecutive_failures: number;
  opens: number;
  open_until: number | null;
  probe_task_id: number | null;
}
