import { RosterError } from "../../errors.js";
import { LEASE_MS_DEFAULT } from "../../policy/retry.js";
import type { AttemptBudget, PersonaGates } from "../economics.js";
import { holdReason, keyFullReason, whyOf } from "../gate-reasons.js";
import { closeForBudgets, economicsOf, gateOf, limitByRate, pauseUntil, windowStart, type ClaimGate, type GateFacts, type PersonaConfigShape, type WindowBudgetFacts } from "../gates.js";
import { attemptBudgetOf, type TaskLimitsRow } from "../budget-rules.js";
import type { WhyReason } from "../types.js";
import { prepared, type Tx } from "./database.js";
import { TASK_LIMITS_SQL, flushSettlements, newPending, type Pending } from "./gate-settlements.js";
import type { AttemptSpend } from "../usage-values.js";

type Q = Pick<Tx, "rows" | "one">;

/** The claim's gate with the persona's lease (the claim's one read of the persona serves both). */
export type PgClaimGate = ClaimGate & { leaseMs: number; holds: boolean; keysBusy: boolean; freshWindow: boolean };

interface GateRow extends PersonaConfigShape {
  lease_ms: number | null;
  paused: boolean;
  pause_until: number | null;
  pause_reason: string | null;
  breaker_state: GateFacts["breakerState"];
  open_until: number | null;
  consecutive_failures: number | null;
  probe_task_id: number | null;
  probe_status: string | null;
  holds: boolean;
  window_budgets: WindowBudgetFacts[] | null;
  keys_busy: boolean;
  /** GATE_ROW_LOCKING_RATE_SQL: the rate window's starts so far, and whether this claim made its row. */
  rate_starts?: number | null;
  rate_fresh?: boolean | null;
}

/**
 * One row per claim: the persona's settings and every gate of it, by primary keys, its
 * persona and global window budgets with their current spend, and two cheap existence
 * probes that pick the claim statement (holds; keys with a running task, through the
 * partial index task_status_key_running). $1 persona, $2 now.
 */
// Prepared once per connection (database.ts prepared()): every claim runs it first, and it is a join worth planning once.
const GATE_ROW_SQL = prepared(`
  SELECT coalesce(j.c ->> 'provider', 'persona:' || p.id) AS provider, j.c ->> 'providerAutoResume' AS auto_resume,
    j.c ->> 'breaker' AS breaker, j.c ->> 'rateLimit' AS rate_limit, (j.c ->> 'leaseMs')::bigint AS lease_ms,
    pp.provider IS NOT NULL AS paused, pp.until AS pause_until, pp.reason AS pause_reason,
    b.state AS breaker_state, b.open_until, b.consecutive_failures, b.probe_task_id,
    (SELECT status FROM task_status WHERE task_id = b.probe_task_id) AS probe_status,
    EXISTS (SELECT 1 FROM budget_holds) AS holds,
    (SELECT json_agg(json_build_object('scope', b.scope, 'key', b.key, 'window_ms', b.window_ms, 'max_cost_usd', b.max_cost_usd, 'max_tokens', b.max_tokens,
              'spent_usd', coalesce(s.cost_usd, 0), 'spent_tokens', coalesce(s.tokens, 0), 'window_start', w.start) ORDER BY b.scope DESC, b.key)
     FROM budgets b CROSS JOIN LATERAL (SELECT CASE WHEN b.window_ms = 0 THEN 0 ELSE ($2::bigint / b.window_ms) * b.window_ms END AS start) w
     LEFT JOIN spend s ON s.scope = b.scope AND s.key = b.key AND s.window_ms = b.window_ms AND s.window_start = w.start
     WHERE (b.scope = 'persona' AND b.key = p.id) OR b.scope = 'global') AS window_budgets,
    EXISTS (SELECT 1 FROM task_status WHERE concurrency_key IS NOT NULL AND status IN ('claimed','in_progress')) AS keys_busy
  FROM personas p CROSS JOIN LATERAL (SELECT p.config::jsonb AS c) j
  LEFT JOIN provider_pauses pp ON pp.provider = coalesce(j.c ->> 'provider', 'persona:' || p.id)
  LEFT JOIN breakers b ON b.persona_id = p.id
  WHERE p.id = $1`);

/**
 * The claim's gate read with its rate window's row created if need be and locked in the
 * same round trip (the persona's rateLimit read in SQL as economicsOf reads it: key
 * `rate:<key or persona>`, the fixed window of `now`), so a rate-limited claim costs one
 * round trip less. Only when the persona has a rate limit is a row written.
 */
const GATE_ROW_LOCKING_RATE_SQL = prepared(`
  WITH rate AS (
    INSERT INTO rate_windows (key, window_start, starts)
    SELECT 'rate:' || coalesce(c.c -> 'rateLimit' ->> 'key', $1), ($2::bigint / (c.c -> 'rateLimit' ->> 'perMs')::bigint) * (c.c -> 'rateLimit' ->> 'perMs')::bigint, 0
    FROM (SELECT config::jsonb AS c FROM personas WHERE id = $1) c
    WHERE jsonb_typeof(c.c -> 'rateLimit' -> 'starts') = 'number' AND jsonb_typeof(c.c -> 'rateLimit' -> 'perMs') = 'number'
    ON CONFLICT (key, window_start) DO UPDATE SET starts = rate_windows.starts
    RETURNING starts, (xmax = 0) AS fresh)
  SELECT g.*, (SELECT starts FROM rate) AS rate_starts, (SELECT fresh FROM rate) AS rate_fresh
  FROM (${GATE_ROW_SQL}) g`);

/**
 * A half-open breaker's row, locked, then read again by a second statement: claimers on
 * several hosts decide on its one probe one after another, and the second statement's
 * snapshot (READ COMMITTED) sees the probe the previous holder of the lock committed.
 */
const BREAKER_LOCK_SQL = "SELECT 1 FROM breakers WHERE persona_id = $1 FOR UPDATE";
const BREAKER_SQL = `
  SELECT b.state AS breaker_state, b.open_until, b.consecutive_failures, b.probe_task_id,
    (SELECT status FROM task_status WHERE task_id = b.probe_task_id) AS probe_status
  FROM breakers b WHERE b.persona_id = $1`;

/**
 * The rate window's row, created if need be and locked (an upsert that changes nothing
 * still locks the row): claimers of one key on several hosts take its starts one after
 * another, so the window's starts are never overshot (docs/economics.md).
 */
const RATE_LOCK_SQL = `
  INSERT INTO rate_windows (key, window_start, starts) VALUES ($1, $2, 0)
  ON CONFLICT (key, window_start) DO UPDATE SET starts = rate_windows.starts
  RETURNING starts, (xmax = 0) AS fresh`;

const CLAIM_WHERE = "WHERE status = 'pending' AND persona_id = $5 AND run_at <= $1::bigint";
const SKIP_HELD = `
          AND NOT EXISTS (SELECT 1 FROM budget_holds h WHERE h.scope = 'task' AND h.key = task_status.task_id)
          AND NOT EXISTS (SELECT 1 FROM tasks t JOIN budget_holds h ON h.scope = 'goal' AND h.key = coalesce(t.root_id, t.id)
                          WHERE t.id = task_status.task_id)`;
const SKIP_FULL_KEYS = `
          AND (task_status.concurrency_key IS NULL
               OR (SELECT count(*) FROM task_status r WHERE r.concurrency_key = task_status.concurrency_key AND r.status IN ('claimed','in_progress'))
                  < (SELECT k.max_running FROM concurrency_keys k WHERE k.key = task_status.concurrency_key))`;

/**
 * The claim statement that passes by held tasks and goals and tasks whose concurrency key
 * is full, built from the plain one (PG_CLAIM_SQL): the same seek with a filter, used
 * only while a hold exists or a keyed task runs, so the plain claim stays as it is. The
 * filter only skips rows; the key's trigger (migrations/postgres/0005) is the guard.
 */
export function skippingClaimSql(base: string, holds: boolean, keys: boolean): string {
  if (!base.includes(CLAIM_WHERE)) throw new RosterError("INTERNAL", "the PostgreSQL claim statement changed: its gate filter cannot be attached (src/store/postgres/gates.ts)");
  return base.replace(CLAIM_WHERE, `${CLAIM_WHERE}${holds ? SKIP_HELD : ""}${keys ? SKIP_FULL_KEYS : ""}`);
}

/**
 * The gates' existence probes as a guard of the plain claim: no provider pause of the
 * persona's account in force, no breaker row, no rate limit setting, no hold, no persona or global
 * window budget, no keyed task running. None refers to the candidate row, so PostgreSQL
 * evaluates them once before the seek (a one-time filter): the claim stays one seek.
 */
const UNGATED = `
          AND NOT EXISTS (SELECT 1 FROM personas gp
                          LEFT JOIN provider_pauses gpp ON gpp.provider = coalesce(gp.config::jsonb ->> 'provider', 'persona:' || gp.id)
                          LEFT JOIN breakers gb ON gb.persona_id = gp.id
                          WHERE gp.id = $5 AND ((gpp.provider IS NOT NULL AND (gpp.until IS NULL OR gpp.until > $1::bigint))
                                               OR gb.persona_id IS NOT NULL OR gp.config::jsonb ? 'rateLimit'))
          AND NOT EXISTS (SELECT 1 FROM budget_holds)
          AND NOT EXISTS (SELECT 1 FROM budgets WHERE scope IN ('persona','global'))
          AND NOT EXISTS (SELECT 1 FROM task_status WHERE concurrency_key IS NOT NULL AND status IN ('claimed','in_progress'))`;

/** The plain claim guarded by UNGATED: it takes nothing while any gate of the persona is active. */
export function ungatedClaimSql(base: string): string {
  if (!base.includes(CLAIM_WHERE)) throw new RosterError("INTERNAL", "the PostgreSQL claim statement changed: its gate guard cannot be attached (src/store/postgres/gates.ts)");
  return base.replace(CLAIM_WHERE, `${CLAIM_WHERE}${UNGATED}`);
}

function factsOf(row: Pick<GateRow, "paused" | "pause_until" | "pause_reason"> & Partial<GateRow>): GateFacts {
  return {
    paused: row.paused,
    pauseUntil: row.pause_until,
    pauseReason: row.pause_reason,
    breakerState: row.breaker_state ?? null,
    openUntil: row.open_until ?? null,
    consecutiveFailures: row.consecutive_failures ?? null,
    probeTaskId: row.probe_task_id ?? null,
    probeStatus: row.probe_status ?? null,
  };
}

/**
 * The claim's economic gates on PostgreSQL (docs/ARCHITECTURE.md rule 15, docs/economics.md),
 * deciding with the shared rules of src/store/gates.ts. Claims run under READ COMMITTED on
 * several hosts at once, so what two claimers must not both take is taken under a row lock:
 * a rate window's row (its starts) and a half-open breaker's row (its one probe); a
 * concurrency key's row is locked by the key's trigger. Settlements do not write gate rows
 * as they go: within() collects what they spent and how their attempts ended, and writes it
 * at the end of the transaction in one order (breakers by persona, pauses by provider, spend
 * by key, holds by task), so settlements on several hosts never deadlock on shared rows.
 */
export class PgGates {
  private readonly pending = new WeakMap<Tx, Pending>();
  /** Personas whose settlements may touch a breaker (a breaker setting, or a breaker row seen), from the claim's reads. */
  private readonly breakerMatters = new Map<string, boolean>();
  /** Personas whose last gate read found a gate set (a rate limit, a pause, a breaker, a hold, a window budget, a running key). */
  private readonly gatedHint = new Map<string, boolean>();

  /**
   * Whether a claim of `persona` should go straight to the gated path: its last gate read
   * found something set, so the guarded plain claim would most likely take nothing. A hint
   * for speed only; both paths are correct whatever it says.
   */
  likelyGated(persona: string): boolean {
    return this.gatedHint.get(persona) === true;
  }

  // ---- the claim ----------------------------------------------------------------

  /** What a claim of `persona` may take now; takes the locks that make the decision hold until commit. */
  async gate(tx: Tx, persona: string, now: number, limit: number): Promise<PgClaimGate> {
    return this.decide(tx, persona, now, limit, true);
  }

  /** After the claim statement: counts the starts in the rate window and marks the breaker's probe. */
  async claimed(tx: Tx, persona: string, gate: PgClaimGate, taskIds: number[], now: number): Promise<void> {
    if (taskIds.length === 0) return;
    if (gate.rateKey !== null) {
      await tx.run("UPDATE rate_windows SET starts = starts + $3 WHERE key = $1 AND window_start = $2", [gate.rateKey, gate.rateWindowStart, taskIds.length]);
      // Windows before the previous one are spent: dropped once, by the claim that opened this one.
      if (gate.freshWindow) await tx.run("DELETE FROM rate_windows WHERE key = $1 AND window_start < $2", [gate.rateKey, gate.rateTrimBefore]);
    }
    if (gate.probe) {
      await tx.run("UPDATE breakers SET state = 'probing', probe_task_id = $2, updated_at = $3 WHERE persona_id = $1", [persona, taskIds[0]!, now]);
      tx.emit("breaker:probing", { persona, taskId: taskIds[0]! });
    }
  }

  /** A persona's closed gates now, for `roster why` and status; a read, no locks. */
  async personaGates(q: Q, persona: string, now: number): Promise<PersonaGates> {
    const gate = await this.decide(q, persona, now, Number.MAX_SAFE_INTEGER, false);
    return { persona, reasons: gate.reasons, until: gate.until };
  }

  private async decide(q: Q | Tx, persona: string, now: number, limit: number, lock: boolean): Promise<PgClaimGate> {
    const row = await q.one<GateRow>(lock ? GATE_ROW_LOCKING_RATE_SQL : GATE_ROW_SQL, [persona, now]);
    if (row === undefined) {
      return { limit, skipHeld: false, probe: false, rateKey: null, rateWindowStart: 0, rateTrimBefore: 0, reasons: [], until: null, leaseMs: LEASE_MS_DEFAULT, holds: false, keysBusy: false, freshWindow: false };
    }
    const settings = economicsOf(persona, row);
    this.breakerMatters.set(persona, settings.breaker !== null || row.breaker_state !== null);
    const paused = row.paused && (row.pause_until === null || row.pause_until > now);
    this.gatedHint.set(persona, settings.rate !== null || paused || row.breaker_state !== null || row.holds || row.keys_busy || row.window_budgets !== null);
    let gate = gateOf(persona, settings, factsOf(row), now, limit);
    if (gate.probe && lock) {
      // Half-open: decide again on the row locked, so only one claimer takes the probe.
      await q.one(BREAKER_LOCK_SQL, [persona]);
      const locked = await q.one<GateRow>(BREAKER_SQL, [persona]);
      gate = gateOf(persona, settings, factsOf({ ...row, ...(locked ?? { breaker_state: null }) }), now, limit);
    }
    if (row.window_budgets !== null) closeForBudgets(gate, row.window_budgets);
    let freshWindow = false;
    if (settings.rate !== null && gate.limit > 0) {
      const start = windowStart(now, settings.rate.perMs);
      let used = 0;
      if (lock) {
        const window =
          row.rate_starts !== null && row.rate_starts !== undefined
            ? { starts: row.rate_starts, fresh: row.rate_fresh === true }
            : (await q.one<{ starts: number; fresh: boolean }>(RATE_LOCK_SQL, [settings.rate.key, start]))!;
        used = window.starts;
        freshWindow = window.fresh;
      } else used = (await q.one<{ starts: number }>("SELECT starts FROM rate_windows WHERE key = $1 AND window_start = $2", [settings.rate.key, start]))?.starts ?? 0;
      limitByRate(gate, settings.rate, used, now);
    }
    gate.skipHeld = row.holds || row.keys_busy;
    return { ...gate, leaseMs: row.lease_ms ?? LEASE_MS_DEFAULT, holds: row.holds, keysBusy: row.keys_busy, freshWindow };
  }

  // ---- settlement: collected, written at the end of the transaction -----------------

  /**
   * Runs a write transaction's body with the settlement effects collected for `t` and
   * written before it commits. A savepoint rolled back drops what was collected inside
   * it, as the database drops its writes.
   */
  async within<T>(t: Tx, body: (t: Tx) => Promise<T>): Promise<T> {
    const pending = newPending();
    const wrapped: Tx = {
      ...t,
      savepoint: async (inner) => {
        const saved = structuredClone(pending);
        try {
          return await t.savepoint(inner);
        } catch (error) {
          Object.assign(pending, saved);
          throw error;
        }
      },
    };
    this.pending.set(wrapped, pending);
    const value = await body(wrapped);
    await flushSettlements(t, pending, this.breakerMatters);
    return value;
  }

  private of(tx: Tx): Pending {
    const p = this.pending.get(tx);
    if (p === undefined) throw new RosterError("INTERNAL", "a settlement outside PgGates.within: its economics would be lost (src/store/postgres/store.ts)");
    return p;
  }

  /** What a settled attempt spent: its usage row, the running totals, its task's and goal's holds. */
  spent(tx: Tx, s: AttemptSpend): void {
    this.of(tx).spent.push(s);
  }

  /** A failed (or lost) attempt of `persona`: counts toward its breaker. */
  failed(tx: Tx, persona: string, taskId: number, now: number, fault = false): void {
    this.of(tx).outcomes.push({ persona, failed: true, taskId, count: 1, now, ...(fault ? { fault } : {}) });
  }

  /** `count` completed attempts of `persona`: close its breaker, count in a failure-rate window. */
  succeeded(tx: Tx, persona: string, count: number, now: number): void {
    this.of(tx).outcomes.push({ persona, failed: false, taskId: null, count, now });
  }

  /** A provider told an attempt to slow down: every persona on its account pauses. Returns when the pause ends (null: by hand). */
  async pause(tx: Tx, p: { persona: string; taskId: number; failure: "rate-limit" | "usage-limit"; retryAfterMs?: number; resetAt?: number; now: number }): Promise<number | null> {
    const row = await tx.one<PersonaConfigShape>(
      "SELECT coalesce(c ->> 'provider', 'persona:' || id) AS provider, c ->> 'providerAutoResume' AS auto_resume, NULL AS breaker, NULL AS rate_limit FROM (SELECT id, config::jsonb AS c FROM personas WHERE id = $1) p",
      [p.persona],
    );
    const settings = economicsOf(p.persona, row ?? null);
    const until = pauseUntil(settings, p);
    this.of(tx).pauses.push({ provider: settings.provider, until, reason: p.failure, taskId: p.taskId, now: p.now });
    tx.emit("provider:paused", { provider: settings.provider, until, reason: p.failure });
    return until;
  }

  // ---- reads ----------------------------------------------------------------------

  /** The task and goal budgets of a running attempt, with their settled spend. */
  async attemptBudget(q: Q, taskId: number): Promise<AttemptBudget | null> {
    const root = await q.one<{ root_id: number }>("SELECT coalesce(root_id, id) AS root_id FROM tasks WHERE id = $1", [taskId]);
    if (root === undefined) return null;
    const l = await q.one<TaskLimitsRow>(TASK_LIMITS_SQL, [[taskId], [root.root_id]]);
    return l === undefined ? null : attemptBudgetOf(l, taskId, root.root_id);
  }

  /** Whether a task or its goal has a budget at all. */
  async budgeted(q: Q, taskId: number): Promise<boolean> {
    const b = await this.attemptBudget(q, taskId);
    return b !== null && (b.task !== null || b.goal !== null);
  }

  /** `roster why`'s gate reasons for a task that could run but for a gate (as the SQLite store's). */
  async whyReasons(q: Q, task: { id: number; persona: string; status: string }, now: number): Promise<WhyReason[]> {
    if (task.status !== "pending" && task.status !== "waiting") return [];
    const holds = await q.rows<{ scope: "task" | "goal"; key: number; since: number; cost_usd: number | null; tokens: number | null }>(
      `SELECT h.scope, h.key, h.since, s.cost_usd, s.tokens FROM tasks t
       JOIN budget_holds h ON (h.scope = 'task' AND h.key = t.id) OR (h.scope = 'goal' AND h.key = coalesce(t.root_id, t.id))
       LEFT JOIN spend s ON s.scope = h.scope AND s.key = h.key::text AND s.window_ms = 0 AND s.window_start = 0
       WHERE t.id = $1 ORDER BY h.scope DESC`,
      [task.id],
    );
    const budget = holds.length === 0 ? null : await this.attemptBudget(q, task.id);
    const out = holds.map((h) => holdReason(h, budget?.[h.scope] ?? null));
    for (const r of (await this.personaGates(q, task.persona, now)).reasons) out.push(whyOf(r, now));
    const key = await q.one<{ key: string; max_running: number; holders: number[] | null }>(
      `SELECT s.concurrency_key AS key, k.max_running,
         (SELECT array_agg(r.task_id::int ORDER BY r.task_id) FROM task_status r
          WHERE r.concurrency_key = s.concurrency_key AND r.status IN ('claimed','in_progress')) AS holders
       FROM task_status s JOIN concurrency_keys k ON k.key = s.concurrency_key WHERE s.task_id = $1`,
      [task.id],
    );
    const holders = key?.holders ?? [];
    if (key !== undefined && holders.length >= key.max_running) out.push(keyFullReason(key.key, holders.length, key.max_running, holders));
    return out;
  }
}
