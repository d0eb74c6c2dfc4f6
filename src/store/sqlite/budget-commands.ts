import { RosterError } from "../../errors.js";
import type { BreakerRecord, BudgetRecord, BudgetScope, ProviderPause, SetBudgetParams } from "../economics.js";
import { breakerResetData, isExhausted, toBreakerRecord, toProviderPause, windowStart, type BreakerRow, type PauseRow } from "../gates.js";
import { budgetRecord, checkRaise, checkScope, checkSetBudget, policyRow, raised, type BudgetRow, type RaiseParams } from "../budget-rules.js";
import type { Db, TransactionRunner } from "./database.js";

/**
 * The commands that move the claim's economic gates by hand on SQLite (docs/economics.md):
 * `roster budget set|raise|rm|ls`, `provider ls|resume`, `breaker ls|reset`, each with its
 * audit event, and the budget holds they put on or lift. The claim and the settlement's side
 * is EconomicsStatements (budgets.ts), which extends this class and shares its statements.
 */
export class EconomicsCommands {
  protected readonly taskPolicyLimits;
  protected readonly spendRow;
  protected readonly insertHold;
  protected readonly deleteHold;
  protected readonly upsertBudget;
  protected readonly budgetRow;
  protected readonly deleteBudget;
  protected readonly listBudgets;
  protected readonly policyHolds;
  protected readonly pauseDelete;
  protected readonly pausedTasksDue;
  protected readonly pausesStmt;
  protected readonly breakerRow;
  protected readonly breakersStmt;
  protected readonly breakerDelete;
  protected readonly insertEvent;
  protected readonly taskRoot;
  protected readonly personaExists;

  constructor(db: Db, protected readonly tx: TransactionRunner) {
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
    this.pauseDelete = db.prepare("DELETE FROM provider_pauses WHERE provider = ? RETURNING until");
    // The tasks a provider's limit gave back to run at its pause's end (fail(): run_at = until, the limit as their
    // last error): due now once the pause is lifted by hand. A task delayed for another reason keeps its time.
    this.pausedTasksDue = db.prepare(`
      UPDATE task_status SET run_at = @now
      WHERE status = 'pending' AND run_at > @now AND run_at <= @until
        AND last_error ->> '$.details.failure' IN ('rate-limit', 'usage-limit')
        AND persona_id IN (SELECT p.id FROM personas p WHERE coalesce(p.config ->> '$.provider', 'persona:' || p.id) = @provider)`);
    this.pausesStmt = db.prepare("SELECT * FROM provider_pauses WHERE until IS NULL OR until > ? ORDER BY provider");
    this.breakerRow = db.prepare("SELECT * FROM breakers WHERE persona_id = ?");
    this.breakersStmt = db.prepare("SELECT * FROM breakers ORDER BY persona_id");
    this.breakerDelete = db.prepare("DELETE FROM breakers WHERE persona_id = ?");
    // Audit of the commands that move a gate by hand (budget set/raise/rm, provider resume, breaker reset):
    // task_id is the task or goal for their budgets, NULL otherwise.
    this.insertEvent = db.prepare("INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES (@taskId, @type, @now, @by, NULL, @data)");
    this.taskRoot = db.prepare("SELECT coalesce(root_id, id) AS root_id FROM tasks WHERE id = ?").pluck();
    this.personaExists = db.prepare("SELECT 1 FROM personas WHERE id = ?").pluck();
  }

  // ---- commands -------------------------------------------------------------------

  setBudget(p: SetBudgetParams): BudgetRecord {
    const { scope, key, window, windowMs } = checkSetBudget(p);
    this.checkTarget(scope, key);
    this.upsertBudget.run({ scope, key, windowMs, maxCostUsd: p.maxCostUsd ?? null, maxTokens: p.maxTokens ?? null, now: p.now });
    const record = this.afterBudgetChange(scope, key, p.now);
    this.audit(scope, key, "budget:set", p.now, p.by, { window, maxCostUsd: record.maxCostUsd, maxTokens: record.maxTokens });
    return record;
  }

  raiseBudget(p: RaiseParams): BudgetRecord {
    const { scope, key } = checkRaise(p);
    this.checkTarget(scope, key);
    let row = this.budgetRow.get(scope, key) as BudgetRow | undefined;
    if (row === undefined && scope === "task") {
      const policy = this.taskPolicyLimits.get(Number(key)) as { usd: number | null; tokens: number | null } | undefined;
      if (policy !== undefined && (policy.usd !== null || policy.tokens !== null)) row = policyRow(Number(key), policy, p.now);
    }
    this.upsertBudget.run({ scope, key, ...raised(row, { ...p, scope, key }), now: p.now });
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
      out.push(this.record(policyRow(key, this.taskPolicyLimits.get(key) as { usd: number | null; tokens: number | null } | undefined, now), now, "policy"));
    }
    return out;
  }

  pauses(now: number): ProviderPause[] {
    return (this.pausesStmt.all(now) as PauseRow[]).map(toProviderPause);
  }

  resumeProvider(p: { provider: string; now: number; by?: string | null }): boolean {
    const provider = p.provider;
    const deleted = this.pauseDelete.get(provider) as { until: number | null } | undefined;
    const resumed = deleted !== undefined;
    if (resumed) {
      if (deleted.until !== null) this.pausedTasksDue.run({ now: p.now, until: deleted.until, provider });
      this.insertEvent.run({ taskId: null, type: "provider:resumed", now: p.now, by: p.by ?? null, data: JSON.stringify({ provider }) });
      this.tx.emit("provider:resumed", { provider });
      this.tx.emit("claim:reopened", { personas: null, reason: "provider" });
    }
    return resumed;
  }

  breakers(): BreakerRecord[] {
    return (this.breakersStmt.all() as BreakerRow[]).map(toBreakerRecord);
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
      data: JSON.stringify(breakerResetData(b)),
    });
    this.tx.emit("breaker:closed", { persona });
    this.tx.emit("claim:reopened", { personas: [persona], reason: "breaker" });
    return true;
  }

  // ---- internals ------------------------------------------------------------------

  /** A budget's target must exist: a task, a goal (a root task), a persona. */
  protected checkTarget(scope: BudgetScope, key: string): void {
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
      row = policyRow(Number(key), this.taskPolicyLimits.get(Number(key)) as { usd: number | null; tokens: number | null } | undefined, now);
      source = "policy";
    }
    row ??= { scope, key, window_ms: 0, max_cost_usd: null, max_tokens: null, updated_at: now };
    if (scope === "task" || scope === "goal") {
      const spent = this.spendRow.get(scope, key, 0, 0) as { cost_usd: number; tokens: number } | undefined;
      this.moveHold(scope, Number(key), isExhausted(row.max_cost_usd, row.max_tokens, spent?.cost_usd ?? 0, spent?.tokens ?? 0), now);
    } else this.tx.emit("claim:reopened", { personas: null, reason: "budget" });
    return this.record(row, now, source);
  }

  /** Puts a hold on (or lifts it from) a task or goal whose all-time spend reached (or is under) its limit. */
  protected moveHold(scope: "task" | "goal", id: number, exhausted: boolean, now: number): void {
    if (exhausted) {
      if (this.insertHold.run(scope, id, now).changes > 0) this.tx.emit("budget:exhausted", { scope, key: String(id) });
    } else if (this.deleteHold.run(scope, id).changes > 0) {
      this.tx.emit("claim:reopened", { personas: null, reason: "budget" });
    }
  }

  protected record(row: BudgetRow, now: number, source: BudgetRecord["source"]): BudgetRecord {
    return budgetRecord(row, this.spendRow.get(row.scope, row.key, row.window_ms, windowStart(now, row.window_ms)) as { cost_usd: number; tokens: number } | undefined, source);
  }
}
