import { RosterError } from "../../errors.js";
import type { BreakerRecord, BudgetRecord, BudgetScope, ProviderPause, SetBudgetParams } from "../economics.js";
import { breakerResetData, isExhausted, toBreakerRecord, toProviderPause, windowStart, type BreakerRow, type PauseRow } from "../gates.js";
import { budgetRecord, checkRaise, checkScope, checkSetBudget, policyRow, raised, type BudgetRow, type RaiseParams } from "../budget-rules.js";
import type { Tx } from "./database.js";

type Q = Pick<Tx, "rows" | "one">;

/**
 * The commands that move the claim's economic gates by hand on PostgreSQL (docs/economics.md):
 * `roster budget set|raise|rm|ls`, `provider ls|resume`, `breaker ls|reset`, each with its
 * audit event, and the holds a budget change puts on or lifts; as SQLite's
 * src/store/sqlite/budget-commands.ts, with the shared rules of src/store/gates.ts. A changed
 * budget's row is written before its hold is judged, in the same transaction; the budget
 * row's lock orders two changes of one budget on two hosts.
 */

const UPSERT_BUDGET_SQL = `
  INSERT INTO budgets (scope, key, window_ms, max_cost_usd, max_tokens, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
  ON CONFLICT (scope, key) DO UPDATE SET window_ms = excluded.window_ms, max_cost_usd = excluded.max_cost_usd,
    max_tokens = excluded.max_tokens, updated_at = excluded.updated_at`;

async function policyLimits(q: Q, taskId: number): Promise<{ usd: number | null; tokens: number | null } | undefined> {
  return q.one<{ usd: number | null; tokens: number | null }>(
    "SELECT (retry_policy::jsonb ->> 'maxCostUsd')::float8 AS usd, (retry_policy::jsonb ->> 'maxTokens')::numeric::bigint AS tokens FROM tasks WHERE id = $1",
    [taskId],
  );
}

async function spendOf(q: Q, scope: string, key: string, windowMs: number, start: number): Promise<{ cost_usd: number; tokens: number } | undefined> {
  return q.one<{ cost_usd: number; tokens: number }>("SELECT cost_usd, tokens FROM spend WHERE scope = $1 AND key = $2 AND window_ms = $3 AND window_start = $4", [
    scope,
    key,
    windowMs,
    start,
  ]);
}

async function budgetRow(q: Q, scope: BudgetScope, key: string, lock = false): Promise<BudgetRow | undefined> {
  return q.one<BudgetRow>(`SELECT scope, key, window_ms, max_cost_usd, max_tokens, updated_at FROM budgets WHERE scope = $1 AND key = $2${lock ? " FOR UPDATE" : ""}`, [scope, key]);
}

async function record(q: Q, row: BudgetRow, now: number, source: BudgetRecord["source"]): Promise<BudgetRecord> {
  return budgetRecord(row, await spendOf(q, row.scope, row.key, row.window_ms, windowStart(now, row.window_ms)), source);
}

/** A budget's target must exist: a task, a goal (a root task), a persona. */
async function checkTarget(q: Q, scope: BudgetScope, key: string): Promise<void> {
  if (scope === "task" || scope === "goal") {
    const root = await q.one<{ root_id: number }>("SELECT coalesce(root_id, id) AS root_id FROM tasks WHERE id = $1", [Number(key)]);
    if (root === undefined) throw new RosterError("TASK_NOT_FOUND", `${scope}: task ${key} does not exist`, { details: { field: scope, taskId: Number(key) } });
    if (scope === "goal" && root.root_id !== Number(key)) {
      throw new RosterError("VALIDATION", `goal: task ${key} is not a goal (a root task); its goal is task ${root.root_id}`, { details: { field: "goal" } });
    }
  } else if (scope === "persona" && (await q.one("SELECT 1 FROM personas WHERE id = $1", [key])) === undefined) {
    throw new RosterError("PERSONA_NOT_FOUND", `persona: unknown persona "${key}"`, { details: { field: "persona" } });
  }
}

async function audit(tx: Tx, scope: BudgetScope, key: string, type: string, now: number, by: string | null | undefined, data: Record<string, unknown>): Promise<void> {
  const taskId = scope === "task" || scope === "goal" ? Number(key) : null;
  await tx.run("INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES ($1, $2, $3, $4, NULL, $5)", [
    taskId,
    type,
    now,
    by ?? null,
    JSON.stringify({ scope, key, ...data }),
  ]);
}

/** After a budget changed: its task's or goal's hold put on or lifted; supervisors woken. */
async function afterBudgetChange(tx: Tx, scope: BudgetScope, key: string, now: number): Promise<BudgetRecord> {
  let row = await budgetRow(tx, scope, key);
  let source: BudgetRecord["source"] = "set";
  if (row === undefined && scope === "task") {
    row = policyRow(Number(key), await policyLimits(tx, Number(key)), now);
    source = "policy";
  }
  row ??= { scope, key, window_ms: 0, max_cost_usd: null, max_tokens: null, updated_at: now };
  if (scope === "task" || scope === "goal") {
    const spent = await spendOf(tx, scope, key, 0, 0);
    if (isExhausted(row.max_cost_usd, row.max_tokens, spent?.cost_usd ?? 0, spent?.tokens ?? 0)) {
      if ((await tx.run("INSERT INTO budget_holds (scope, key, since) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", [scope, Number(key), now])) > 0) {
        tx.emit("budget:exhausted", { scope, key });
      }
    } else if ((await tx.run("DELETE FROM budget_holds WHERE scope = $1 AND key = $2", [scope, Number(key)])) > 0) {
      tx.emit("claim:reopened", { personas: null, reason: "budget" });
    }
  } else tx.emit("claim:reopened", { personas: null, reason: "budget" });
  return record(tx, row, now, source);
}

export async function setBudget(tx: Tx, p: SetBudgetParams): Promise<BudgetRecord> {
  const { scope, key, window, windowMs } = checkSetBudget(p);
  await checkTarget(tx, scope, key);
  await tx.run(UPSERT_BUDGET_SQL, [scope, key, windowMs, p.maxCostUsd ?? null, p.maxTokens ?? null, p.now]);
  const out = await afterBudgetChange(tx, scope, key, p.now);
  await audit(tx, scope, key, "budget:set", p.now, p.by, { window, maxCostUsd: out.maxCostUsd, maxTokens: out.maxTokens });
  return out;
}

export async function raiseBudget(tx: Tx, p: RaiseParams): Promise<BudgetRecord> {
  const { scope, key } = checkRaise(p);
  await checkTarget(tx, scope, key);
  // Locked: two raises on two hosts add up instead of one overwriting the other.
  let row = await budgetRow(tx, scope, key, true);
  if (row === undefined && scope === "task") {
    const policy = await policyLimits(tx, Number(key));
    if (policy !== undefined && (policy.usd !== null || policy.tokens !== null)) row = policyRow(Number(key), policy, p.now);
  }
  const next = raised(row, { ...p, scope, key });
  await tx.run(UPSERT_BUDGET_SQL, [scope, key, next.windowMs, next.maxCostUsd, next.maxTokens, p.now]);
  const out = await afterBudgetChange(tx, scope, key, p.now);
  await audit(tx, scope, key, "budget:raised", p.now, p.by, { addCostUsd: p.addCostUsd ?? null, addTokens: p.addTokens ?? null, maxCostUsd: out.maxCostUsd, maxTokens: out.maxTokens });
  return out;
}

export async function removeBudget(tx: Tx, p: { scope: BudgetScope; key: string; now: number; by?: string | null }): Promise<boolean> {
  const { scope, key } = checkScope(p.scope, p.key);
  if ((await tx.run("DELETE FROM budgets WHERE scope = $1 AND key = $2", [scope, key])) === 0) return false;
  await afterBudgetChange(tx, scope, key, p.now);
  await audit(tx, scope, key, "budget:removed", p.now, p.by, {});
  return true;
}

export async function budgets(q: Q, now: number): Promise<BudgetRecord[]> {
  const out: BudgetRecord[] = [];
  for (const row of await q.rows<BudgetRow>("SELECT scope, key, window_ms, max_cost_usd, max_tokens, updated_at FROM budgets ORDER BY scope, key")) {
    out.push(await record(q, row, now, "set"));
  }
  // Tasks held by their own policy's limits (no set budget): listed as budgets of source "policy".
  for (const { key } of await q.rows<{ key: number }>(
    `SELECT h.key FROM budget_holds h WHERE h.scope = 'task'
       AND NOT EXISTS (SELECT 1 FROM budgets b WHERE b.scope = 'task' AND b.key = h.key::text) ORDER BY h.key`,
  )) {
    out.push(await record(q, policyRow(key, await policyLimits(q, key), now), now, "policy"));
  }
  return out;
}

export async function pauses(q: Q, now: number): Promise<ProviderPause[]> {
  const rows = await q.rows<PauseRow>("SELECT provider, until, reason, task_id, since FROM provider_pauses WHERE until IS NULL OR until > $1 ORDER BY provider", [now]);
  return rows.map(toProviderPause);
}

export async function resumeProvider(tx: Tx, p: { provider: string; now: number; by?: string | null }): Promise<boolean> {
  const deleted = await tx.one<{ until: string | number | null }>("DELETE FROM provider_pauses WHERE provider = $1 RETURNING until", [p.provider]);
  if (deleted === undefined) return false;
  // The tasks the provider's limit gave back to run at the pause's end (their last error the limit): due now.
  if (deleted.until !== null) {
    await tx.run(
      `UPDATE task_status SET run_at = $1
       WHERE status = 'pending' AND run_at > $1 AND run_at <= $2
         AND (last_error::jsonb -> 'details' ->> 'failure') IN ('rate-limit', 'usage-limit')
         AND persona_id IN (SELECT pp.id FROM personas pp WHERE coalesce(pp.config::jsonb ->> 'provider', 'persona:' || pp.id) = $3)`,
      [p.now, Number(deleted.until), p.provider],
    );
  }
  await tx.run("INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES (NULL, 'provider:resumed', $1, $2, NULL, $3)", [
    p.now,
    p.by ?? null,
    JSON.stringify({ provider: p.provider }),
  ]);
  tx.emit("provider:resumed", { provider: p.provider });
  tx.emit("claim:reopened", { personas: null, reason: "provider" });
  return true;
}

export async function breakers(q: Q): Promise<BreakerRecord[]> {
  return (await q.rows<BreakerRow>("SELECT persona_id, state, consecutive_failures, opens, open_until, probe_task_id FROM breakers ORDER BY persona_id")).map(toBreakerRecord);
}

export async function resetBreaker(tx: Tx, p: { persona: string; now: number; by?: string | null }): Promise<boolean> {
  const b = await tx.one<BreakerRow>("DELETE FROM breakers WHERE persona_id = $1 RETURNING persona_id, state, consecutive_failures, opens, open_until, probe_task_id", [p.persona]);
  if (b === undefined) return false;
  await tx.run("INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES (NULL, 'breaker:reset', $1, $2, NULL, $3)", [
    p.now,
    p.by ?? null,
    JSON.stringify(breakerResetData(b)),
  ]);
  tx.emit("breaker:closed", { persona: p.persona });
  tx.emit("claim:reopened", { personas: [p.persona], reason: "breaker" });
  return true;
}
