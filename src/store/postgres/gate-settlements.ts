import { economicsOf, failureStep, opening, personaHold, rateTrips, spendKeys, windowStart, type BreakerRow, type BreakerSettings } from "../gates.js";
import { holdMoves, type TaskLimitsRow } from "../budget-rules.js";
import type { Tx } from "./database.js";
import type { AttemptSpend } from "../usage-values.js";
import { recordUsage, type SpentUsage } from "./usage.js";

/** Limits, spend and holds of tasks and their goals, one row per (task, goal) pair. */
export const TASK_LIMITS_SQL = `
  SELECT u.task_id, u.root_id,
    CASE WHEN bt.scope IS NULL THEN (t.retry_policy::jsonb ->> 'maxCostUsd')::float8 ELSE bt.max_cost_usd END AS task_usd,
    CASE WHEN bt.scope IS NULL THEN (t.retry_policy::jsonb ->> 'maxTokens')::numeric::bigint ELSE bt.max_tokens END AS task_tokens,
    bg.max_cost_usd AS goal_usd, bg.max_tokens AS goal_tokens, bg.scope IS NOT NULL AS has_goal,
    st.cost_usd AS task_spent_usd, st.tokens AS task_spent_tokens, sg.cost_usd AS goal_spent_usd, sg.tokens AS goal_spent_tokens,
    EXISTS (SELECT 1 FROM budget_holds WHERE scope = 'task' AND key = u.task_id) AS task_held,
    EXISTS (SELECT 1 FROM budget_holds WHERE scope = 'goal' AND key = u.root_id) AS goal_held
  FROM unnest($1::bigint[], $2::bigint[]) AS u(task_id, root_id)
  JOIN tasks t ON t.id = u.task_id
  LEFT JOIN budgets bt ON bt.scope = 'task' AND bt.key = u.task_id::text
  LEFT JOIN budgets bg ON bg.scope = 'goal' AND bg.key = u.root_id::text
  LEFT JOIN spend st ON st.scope = 'task' AND st.key = u.task_id::text AND st.window_ms = 0 AND st.window_start = 0
  LEFT JOIN spend sg ON sg.scope = 'goal' AND sg.key = u.root_id::text AND sg.window_ms = 0 AND sg.window_start = 0`;

/** What a transaction's settlements did to the economic gates, written before it commits (PgGates.within). */
export interface Pending {
  /** Settled attempts' usage, recorded (usage rows, spend, holds) at the end of the transaction. */
  spent: AttemptSpend[];
  /** Each attempt's end in the order settled; completions of a persona may come as one with a count. */
  /** `fault`: the persona's own fault, which holds it whatever its breaker settings (personaHold). */
  outcomes: Array<{ persona: string; failed: boolean; taskId: number | null; count: number; now: number; fault?: boolean }>;
  pauses: Array<{ provider: string; until: number | null; reason: string; taskId: number; now: number }>;
}

export function newPending(): Pending {
  return { spent: [], outcomes: [], pauses: [] };
}

type State = Pick<BreakerRow, "state" | "consecutive_failures" | "opens" | "open_until" | "probe_task_id">;

/**
 * Writes what a transaction's settlements did to the gates, in one order every
 * transaction keeps — breakers by persona, provider pauses by provider, spend rows by key,
 * holds by task — so settlements on several hosts wait for each other instead of
 * deadlocking on the rows they share (a goal's spend, the global totals, a breaker).
 * The rules are those of src/store/gates.ts, applied to each persona's outcomes in order.
 */
export async function flushSettlements(tx: Tx, p: Pending, breakerMatters: Map<string, boolean>): Promise<void> {
  if (p.outcomes.length > 0) await flushBreakers(tx, p, breakerMatters);
  for (const pause of [...p.pauses].sort((a, b) => (a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : 0))) {
    await tx.run(
      `INSERT INTO provider_pauses (provider, until, reason, task_id, since) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (provider) DO UPDATE SET until = CASE WHEN provider_pauses.until IS NULL OR excluded.until IS NULL THEN NULL
         ELSE greatest(provider_pauses.until, excluded.until) END, reason = excluded.reason, task_id = excluded.task_id`,
      [pause.provider, pause.until, pause.reason, pause.taskId, pause.now],
    );
  }
  if (p.spent.length > 0) await flushSpend(tx, await recordUsage(tx, p.spent));
}

async function flushSpend(tx: Tx, spent: SpentUsage[]): Promise<void> {
  if (spent.length === 0) return;
  const totals = new Map<string, { row: [string, string, number, number]; tokens: number; cost: number }>();
  for (const s of spent) {
    for (const row of spendKeys(s)) {
      const id = row.join("\u0000");
      const t = totals.get(id) ?? { row, tokens: 0, cost: 0 };
      t.tokens += s.tokens;
      t.cost += s.costUsd ?? 0;
      totals.set(id, t);
    }
  }
  const rows = [...totals.values()].sort((a, b) => compareRows(a.row, b.row));
  await tx.run(
    `INSERT INTO spend (scope, key, window_ms, window_start, tokens, cost_usd)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::float8[])
     ON CONFLICT (scope, key, window_ms, window_start) DO UPDATE SET tokens = spend.tokens + excluded.tokens, cost_usd = spend.cost_usd + excluded.cost_usd`,
    [0, 1, 2, 3].map((i) => rows.map((r) => r.row[i])).concat([rows.map((r) => r.tokens), rows.map((r) => r.cost)]),
  );
  // Holds: one read of the limits, spend and holds of every task and goal that spent, then a write only where a hold comes or goes.
  const pairs = new Map<number, number>();
  for (const s of spent) pairs.set(s.taskId, s.rootId);
  const limits = await tx.rows<TaskLimitsRow & { task_id: number; root_id: number }>(TASK_LIMITS_SQL, [[...pairs.keys()], [...pairs.values()]]);
  const moves = new Map<string, { scope: "task" | "goal"; id: number; exhausted: boolean }>();
  for (const l of limits) for (const m of holdMoves(l, l.task_id, l.root_id)) moves.set(`${m.scope}:${m.id}`, m);
  const now = Math.max(...spent.map((s) => s.now));
  for (const m of [...moves.values()].sort((a, b) => (a.scope < b.scope ? -1 : a.scope > b.scope ? 1 : a.id - b.id))) {
    if (m.exhausted) {
      if ((await tx.run("INSERT INTO budget_holds (scope, key, since) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", [m.scope, m.id, now])) > 0) {
        tx.emit("budget:exhausted", { scope: m.scope, key: String(m.id) });
      }
    } else if ((await tx.run("DELETE FROM budget_holds WHERE scope = $1 AND key = $2", [m.scope, m.id])) > 0) {
      tx.emit("claim:reopened", { personas: null, reason: "budget" });
    }
  }
}

function compareRows(a: [string, string, number, number], b: [string, string, number, number]): number {
  for (let i = 0; i < 4; i++) {
    if (a[i]! < b[i]!) return -1;
    if (a[i]! > b[i]!) return 1;
  }
  return 0;
}

async function flushBreakers(tx: Tx, p: Pending, breakerMatters: Map<string, boolean>): Promise<void> {
  // Completions of personas known to have no breaker (setting and row) cost nothing; the rest read their settings once.
  const personas = [...new Set(p.outcomes.filter((o) => o.failed || breakerMatters.get(o.persona) !== false).map((o) => o.persona))].sort();
  if (personas.length === 0) return;
  const settings = await tx.rows<{ id: string; breaker: string | null; has_row: boolean }>(
    `SELECT p.id, p.config::jsonb ->> 'breaker' AS breaker, EXISTS (SELECT 1 FROM breakers b WHERE b.persona_id = p.id) AS has_row
     FROM personas p WHERE p.id = ANY($1::text[]) ORDER BY p.id`,
    [personas],
  );
  for (const s of settings) {
    const breaker = economicsOf(s.id, { provider: "", auto_resume: null, breaker: s.breaker, rate_limit: null }).breaker;
    breakerMatters.set(s.id, breaker !== null || s.has_row);
    const outcomes = p.outcomes.filter((o) => o.persona === s.id);
    const fault = outcomes.some((o) => o.fault === true);
    if (breaker === null && !s.has_row && !fault) continue;
    // Failures are counted only under a breaker setting (as SQLite's attemptFailed), or a persona's fault; a row left by one removed is closed by a success.
    if (!fault && (breaker === null ? !outcomes.some((o) => !o.failed) : !outcomes.some((o) => o.failed) && !s.has_row && breaker.rate === null)) continue;
    await settlePersona(tx, s.id, breaker, outcomes);
  }
}

/** Replays one persona's outcomes against its breaker row, locked (an upsert), and writes where it ends. */
async function settlePersona(tx: Tx, persona: string, breaker: BreakerSettings | null, outcomes: Pending["outcomes"]): Promise<void> {
  const locked = await tx.one<State & { fresh: boolean }>(
    `INSERT INTO breakers (persona_id, state, consecutive_failures, opens, open_until, probe_task_id, updated_at) VALUES ($1, 'closed', 0, 0, NULL, NULL, $2)
     ON CONFLICT (persona_id) DO UPDATE SET persona_id = excluded.persona_id
     RETURNING state, consecutive_failures, opens, open_until, probe_task_id, (xmax = 0) AS fresh`,
    [persona, outcomes[0]!.now],
  );
  let cur: State | undefined = locked!.fresh ? undefined : locked!;
  const before = cur?.state ?? null;
  const windowAdd = (start: number, attempts: number, failures: number) =>
    tx.one<{ attempts: number; failures: number }>(
      `INSERT INTO breaker_windows (persona_id, window_start, attempts, failures) VALUES ($1, $2, $3, $4)
       ON CONFLICT (persona_id, window_start) DO UPDATE SET attempts = breaker_windows.attempts + excluded.attempts, failures = breaker_windows.failures + excluded.failures
       RETURNING attempts, failures`,
      [persona, start, attempts, failures],
    );
  let now = outcomes[0]!.now;
  for (const o of outcomes) {
    now = o.now;
    const rate = breaker?.rate ?? null;
    if (!o.failed) {
      if (rate !== null) {
        const start = windowStart(o.now, rate.windowMs);
        await windowAdd(start, o.count, 0);
        await tx.run("DELETE FROM breaker_windows WHERE persona_id = $1 AND window_start < $2", [persona, start]);
      }
      if (cur !== undefined && cur.state !== "closed") tx.emit("breaker:closed", { persona });
      cur = undefined;
      continue;
    }
    const rules = o.fault === true ? personaHold(breaker) : breaker;
    if (rules === null) continue;
    const step = failureStep(rules, cur);
    if (!step.trip && rate !== null) step.trip = rateTrips(rate, (await windowAdd(windowStart(o.now, rate.windowMs), 1, 1))!);
    if (!step.trip) {
      cur = { state: "closed", consecutive_failures: step.failures, opens: 0, open_until: null, probe_task_id: null };
      continue;
    }
    // A fresh window after the breaker closes again: the failures that opened it are paid for.
    if (rate !== null) await tx.run("DELETE FROM breaker_windows WHERE persona_id = $1", [persona]);
    const { opens, until } = opening(rules, cur?.opens ?? 0, step.reopening, o.now);
    cur = { state: "open", consecutive_failures: step.failures, opens, open_until: until, probe_task_id: null };
    tx.emit("breaker:opened", { persona, until, failures: step.failures, taskId: o.taskId! });
  }
  if (cur === undefined) {
    await tx.run("DELETE FROM breakers WHERE persona_id = $1", [persona]);
    return;
  }
  if (before === cur.state && !outcomes.some((o) => o.failed)) return;
  await tx.run(
    "UPDATE breakers SET state = $2, consecutive_failures = $3, opens = $4, open_until = $5, probe_task_id = NULL, updated_at = $6 WHERE persona_id = $1",
    [persona, cur.state, cur.consecutive_failures, cur.opens, cur.open_until, now],
  );
}
