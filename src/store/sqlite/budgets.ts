import type { AttemptBudget, PersonaGates } from "../economics.js";
import { holdReason, keyFullReason, whyOf } from "../gate-reasons.js";
import { closeForBudgets, economicsOf, failureStep, gateOf, limitByConcurrency, limitByRate, opening, pauseUntil, personaHold, rateTrips, windowStart, type BreakerRow, type ClaimGate, type PersonaConfigShape, type WindowBudgetFacts } from "../gates.js";
import { attemptBudgetOf, holdMoves, type TaskLimitsRow } from "../budget-rules.js";
import type { WhyReason } from "../types.js";
import { EconomicsCommands } from "./budget-commands.js";
import type { Db, TransactionRunner } from "./database.js";
import type { Recorded } from "./usage.js";
import { rowObjects } from "./row-objects.js";


/**
 * The gates the claim checks (docs/ARCHITECTURE.md rule 15) and the rules that move them at
 * settlement, on SQLite: budgets and the holds they put on tasks and goals, provider pauses,
 * per-persona circuit breakers, and starts-per-window rate limits. The rules themselves are
 * src/store/gates.ts (shared with the PostgreSQL store); this class reads and writes their
 * rows. Every method runs inside the caller's transaction (BEGIN IMMEDIATE: one writer at a
 * time), so several processes sharing the database see one state.
 */
export class EconomicsStatements extends EconomicsCommands {
  private readonly personaConfig;
  private readonly successRow;
  private readonly gateRow;
  private readonly windowBudgets;
  private readonly rateUsed;
  private readonly rateAdd;
  private readonly rateTrim;
  private readonly setProbe;
  private readonly taskLimits;
  private readonly pauseUpsert;
  private readonly breakerUpsert;
  private readonly holdsOf;
  private readonly windowAdd;
  private readonly windowClear;
  private readonly keyOf;
  private readonly anyTaskOrGoalBudget;

  constructor(db: Db, tx: TransactionRunner) {
    super(db, tx);
    const econ = `coalesce(p.config ->> '$.provider', 'persona:' || p.id) AS provider, p.config ->> '$.providerAutoResume' AS auto_resume,
      p.config ->> '$.breaker' AS breaker, p.config ->> '$.rateLimit' AS rate_limit`;
    this.personaConfig = db.prepare(`SELECT ${econ} FROM personas p WHERE p.id = ?`);
    // A completion's read: the persona's settings and its breaker's state, by primary keys.
    // Only the breaker's setting: a completion moves nothing else of the persona's gates.
    this.successRow = rowObjects<SuccessRowShape>(db.prepare(`
      SELECT NULL AS provider, NULL AS auto_resume, p.config ->> '$.breaker' AS breaker, NULL AS rate_limit, b.state, b.consecutive_failures
      FROM personas p LEFT JOIN breakers b ON b.persona_id = p.id WHERE p.id = ?`));
    // One row per claim: the persona's settings and every gate of it, by primary keys. Each key
    // is probed with `=`: an IN list on a key is an ephemeral b-tree built at every execution.
    this.gateRow = rowObjects<GateRowShape>(db.prepare(`
      SELECT ${econ}, p.config ->> '$.leaseMs' AS lease_ms,
        pp.provider IS NOT NULL AS paused, pp.until AS pause_until, pp.reason AS pause_reason,
        b.state AS breaker_state, b.open_until, b.consecutive_failures, b.probe_task_id,
        (SELECT status FROM task_status WHERE task_id = b.probe_task_id) AS probe_status,
        EXISTS (SELECT 1 FROM budget_holds) AS holds,
        (EXISTS (SELECT 1 FROM budgets WHERE scope = 'persona') OR EXISTS (SELECT 1 FROM budgets WHERE scope = 'global')) AS window_budgets,
        EXISTS (SELECT 1 FROM concurrency_keys INDEXED BY concurrency_keys_full WHERE running >= max_running) AS full_keys,
        p.config ->> '$.concurrency' AS concurrency,
        coalesce((SELECT n FROM task_counts WHERE persona_id = p.id AND status = 'claimed'), 0)
          + coalesce((SELECT n FROM task_counts WHERE persona_id = p.id AND status = 'in_progress'), 0) AS running
      FROM personas p
      LEFT JOIN provider_pauses pp ON pp.provider = coalesce(p.config ->> '$.provider', 'persona:' || p.id)
      LEFT JOIN breakers b ON b.persona_id = p.id
      WHERE p.id = @persona`));
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
    this.anyTaskOrGoalBudget = db.prepare("SELECT EXISTS (SELECT 1 FROM budgets WHERE scope = 'task') OR EXISTS (SELECT 1 FROM budgets WHERE scope = 'goal')").pluck();
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
    this.pauseUpsert = db.prepare(`
      INSERT INTO provider_pauses (provider, until, reason, task_id, since) VALUES (@provider, @until, @reason, @taskId, @now)
      ON CONFLICT (provider) DO UPDATE SET until = CASE WHEN provider_pauses.until IS NULL OR excluded.until IS NULL THEN NULL
        ELSE max(provider_pauses.until, excluded.until) END, reason = excluded.reason, task_id = excluded.task_id`);
    this.breakerUpsert = db.prepare(`
      INSERT INTO breakers (persona_id, state, consecutive_failures, opens, open_until, probe_task_id, updated_at)
      VALUES (@persona, @state, @failures, @opens, @openUntil, NULL, @now)
      ON CONFLICT (persona_id) DO UPDATE SET state = excluded.state, consecutive_failures = excluded.consecutive_failures,
        opens = excluded.opens, open_until = excluded.open_until, probe_task_id = NULL, updated_at = excluded.updated_at`);
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
  gate(persona: string, now: number, limit: number): SqliteClaimGate {
    const row = this.gateRow.get({ persona });
    if (row === undefined) return { limit, skipHeld: false, probe: false, rateKey: null, rateWindowStart: 0, rateTrimBefore: 0, reasons: [], until: null, leaseMs: null };
    const settings = economicsOf(persona, row);
    const gate = gateOf(
      persona,
      settings,
      {
        paused: row.paused === 1,
        pauseUntil: row.pause_until,
        pauseReason: row.pause_reason,
        breakerState: row.breaker_state,
        openUntil: row.open_until,
        consecutiveFailures: row.consecutive_failures,
        probeTaskId: row.probe_task_id,
        probeStatus: row.probe_status,
      },
      now,
      limit,
    );
    // Its leased tasks across every process, as task_counts keeps them (one write lock: the count holds until commit).
    limitByConcurrency(gate, row.concurrency, row.running);
    if (row.window_budgets === 1) closeForBudgets(gate, this.windowBudgets.all({ persona, now }) as WindowBudgetFacts[]);
    if (settings.rate !== null && gate.limit > 0) {
      const used = (this.rateUsed.get(settings.rate.key, windowStart(now, settings.rate.perMs)) as number | undefined) ?? 0;
      limitByRate(gate, settings.rate, used, now);
    }
    // Held tasks and goals, and tasks whose concurrency key is at its limit, are skipped by the claim's seek.
    gate.skipHeld = row.holds === 1 || row.full_keys === 1;
    return { ...gate, leaseMs: row.lease_ms };
  }

  /** After the claim statement: counts the starts in the rate window and marks the breaker's probe. */
  claimed(persona: string, gate: ClaimGate, taskIds: number[], now: number): void {
    if (taskIds.length === 0) return;
    if (gate.rateKey !== null) {
      this.rateAdd.run({ key: gate.rateKey, start: gate.rateWindowStart, n: taskIds.length });
      this.rateTrim.run(gate.rateKey, gate.rateTrimBefore);
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
    return l === undefined ? null : attemptBudgetOf(l, taskId, rootId);
  }

  /** Whether a task or its goal has a budget at all (an attempt aborted for its budget is given back uncounted only then). */
  budgeted(taskId: number): boolean {
    const b = this.attemptBudget(taskId);
    return b !== null && (b.task !== null || b.goal !== null);
  }

  // ---- settlement -----------------------------------------------------------------

  /**
   * Whether a recorded attempt's holds may move: only a task or goal with a budget (a budgets row,
   * or the task's own policy) is ever held or released (holdMoves). One read per settle batch
   * spares afterUsage's read for every attempt of a store without such budgets.
   */
  holdsMayMove(): (r: Recorded) => boolean {
    const budgets = this.anyTaskOrGoalBudget.get() === 1;
    return (r) => budgets || r.ownBudget;
  }

  /** After usage is recorded: holds the task or its goal when its budget is now spent. */
  afterUsage(r: Recorded, now: number): void {
    // One read for both scopes (limits, spend, holds); a write only when a hold comes or goes.
    const l = this.taskLimits.get({ taskId: r.taskId, rootId: r.rootId, task: String(r.taskId), goal: String(r.rootId) }) as TaskLimitsRow | undefined;
    if (l === undefined) return;
    for (const m of holdMoves(l, r.taskId, r.rootId)) this.moveHold(m.scope, m.id, m.exhausted, now);
  }

  /** A provider told the attempt to slow down: pause every persona on its account. Returns when the pause ends (null: by hand). */
  pauseProvider(p: { persona: string; taskId: number; failure: "rate-limit" | "usage-limit"; retryAfterMs?: number; resetAt?: number; now: number }): number | null {
    const settings = economicsOf(p.persona, (this.personaConfig.get(p.persona) as PersonaConfigShape | undefined) ?? null);
    const until = pauseUntil(settings, p);
    this.pauseUpsert.run({ provider: settings.provider, until, reason: p.failure, taskId: p.taskId, now: p.now });
    this.tx.emit("provider:paused", { provider: settings.provider, until, reason: p.failure });
    return until;
  }

  /** A failed (or lost) attempt: counts toward the persona's breaker, or reopens it after a failed probe. */
  attemptFailed(persona: string, taskId: number, now: number, fault = false): void {
    const settings = economicsOf(persona, (this.personaConfig.get(persona) as PersonaConfigShape | undefined) ?? null);
    // A persona's own fault holds it at once, breaker setting or not (personaHold).
    const breaker = fault ? personaHold(settings.breaker) : settings.breaker;
    if (breaker === null) return;
    const b = this.breakerRow.get(persona) as BreakerRow | undefined;
    const step = failureStep(breaker, b);
    const rate = breaker.rate;
    if (!step.trip && rate !== null) {
      step.trip = rateTrips(rate, this.windowAdd.get({ persona, start: windowStart(now, rate.windowMs), attempts: 1, failures: 1 }) as { attempts: number; failures: number });
    }
    if (!step.trip) {
      this.breakerUpsert.run({ persona, state: "closed", failures: step.failures, opens: 0, openUntil: null, now });
      return;
    }
    // A fresh window after the breaker closes again: the failures that opened it are paid for.
    if (rate !== null) this.windowClear.run({ persona, before: Number.MAX_SAFE_INTEGER });
    const { opens, until } = opening(breaker, b?.opens ?? 0, step.reopening, now);
    this.breakerUpsert.run({ persona, state: "open", failures: step.failures, opens, openUntil: until, now });
    this.tx.emit("breaker:opened", { persona, until, failures: step.failures, taskId });
  }

  /**
   * `count` completed attempts close the persona's breaker, and count in a failure-rate
   * breaker's window. Cheap when there is none (two primary-key reads).
   */
  attemptSucceeded(persona: string, now?: number, count = 1): void {
    // The persona's breaker setting and its breaker's row in one read; the persona's row is
    // always there (personas are retired, never deleted), else the two reads as they were.
    const row = this.successRow.get(persona);
    if (now !== undefined) {
      const rate = economicsOf(persona, row ?? null).breaker?.rate ?? null;
      if (rate !== null) {
        const start = windowStart(now, rate.windowMs);
        this.windowAdd.get({ persona, start, attempts: count, failures: 0 });
        this.windowClear.run({ persona, before: start });
      }
    }
    const b: Pick<BreakerRow, "state" | "consecutive_failures"> | undefined =
      row === undefined ? (this.breakerRow.get(persona) as BreakerRow | undefined) : row.state === null ? undefined : { state: row.state, consecutive_failures: row.consecutive_failures ?? 0 };
    if (b === undefined || (b.state === "closed" && b.consecutive_failures === 0)) return;
    this.breakerDelete.run(persona);
    if (b.state !== "closed") this.tx.emit("breaker:closed", { persona });
  }

  /**
   * `roster why`'s gate reasons for a task that could run but for a gate: its task or
   * goal budget held, and its persona's closed gates (provider pause, breaker, window
   * budget, rate window), each with when it lifts.
   */
  whyReasons(task: { id: number; persona: string; status: string }, now: number): WhyReason[] {
    if (task.status !== "pending" && task.status !== "waiting") return [];
    const rootId = (this.taskRoot.get(task.id) as number | undefined) ?? task.id;
    const holds = this.holdsOf.all({ taskId: task.id, rootId }) as Array<{ scope: "task" | "goal"; key: number; since: number; cost_usd: number | null; tokens: number | null }>;
    const budget = holds.length === 0 ? null : this.attemptBudget(task.id);
    const out = holds.map((h) => holdReason(h, budget?.[h.scope] ?? null));
    for (const r of this.gate(task.persona, now, Number.MAX_SAFE_INTEGER).reasons) out.push(whyOf(r, now));
    const key = this.keyOf.get(task.id) as { key: string; running: number; max_running: number; holders: string } | undefined;
    if (key !== undefined && key.running >= key.max_running) out.push(keyFullReason(key.key, key.running, key.max_running, JSON.parse(key.holders) as number[]));
    return out;
  }
}

/** The claim's gate on SQLite, with the persona's own lease (its config's leaseMs; null: the default). */
export type SqliteClaimGate = ClaimGate & { leaseMs: number | null };

type SuccessRowShape = PersonaConfigShape & { state: BreakerRow["state"] | null; consecutive_failures: number | null };

interface GateRowShape extends PersonaConfigShape {
  lease_ms: number | null;
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
  concurrency: number | null;
  running: number;
}
