import { randomBytes } from "node:crypto";
import { readyEvent, type Readied } from "../events.js";
import { RosterError, type ErrorObject } from "../../errors.js";
import { hasAttemptsLeft, nextRunAt, type RetryPolicy } from "../../policy/retry.js";
import { serializeJson, validateBatch } from "../input.js";
import { storedError } from "../sqlite/transitions.js";
import { usageOfSettlement, type NormalUsage } from "../sqlite/usage.js";
import type {
  ClaimParams,
  ClaimedTask,
  CompleteParams,
  CompleteResult,
  DependencyResult,
  FailParams,
  FailResult,
  CountedFailure,
  HumanInput,
  LeaseResult,
  ReleaseParams,
  SettlementResult,
  TaskState,
} from "../types.js";
import { prepared, type Tx } from "./database.js";
import { writeBatch } from "./enqueue.js";
import { byClaimOrder, claimedTask, dependencyResult, type ClaimDetail, type ClaimRow, type DependencyRow } from "../claimed.js";
import { PgGates, skippingClaimSql, ungatedClaimSql } from "./gates.js";
import { providerLimit } from "../gates.js";
import { parkForApproval } from "./approvals.js";

export const CLAIM_LIMIT_MAX = 1_000;

const CLAIM_SET = `status = 'claimed', attempts = s.attempts + 1, assigned_agent_id = $2,
        lease_token = $3 || '.' || s.task_id, lease_ms = $4::bigint, lease_expires_at = $1::bigint + $4::bigint,
        claimed_at = $1::bigint, started_at = NULL, progress = NULL, progress_message = NULL, updated_at = $1::bigint`;
const CLAIM_RETURNING = "RETURNING s.task_id, s.attempts, s.max_attempts, s.lease_token, s.lease_expires_at, s.ready_at, s.run_at, s.priority";

/**
 * docs/ARCHITECTURE.md rules 2, 3 and 9 on PostgreSQL, in one statement (one round
 * trip, which is what a claim costs on a loaded or distant server): `picked` takes the
 * best ready rows by one seek into the partial claim index task_status_claim
 * (persona, priority DESC, run_at, task_id) WHERE pending, locking them FOR UPDATE
 * SKIP LOCKED so concurrent claimers on any host take different rows instead of
 * queueing on the same ones; `claimed` leases them; `logged` writes their
 * task:claimed events; the outer SELECT returns what the attempt needs (the task, its
 * dependencies with their results, the answers a person gave its earlier attempts'
 * questions, as JSON). test/store/postgres-plan.test.ts explains it.
 * Params: $1 now, $2 agentId, $3 token prefix, $4 leaseMs, $5 persona, $6 limit.
 */
export const PG_CLAIM_SQL = prepared(`
      WITH picked AS (
        SELECT task_id FROM task_status
        WHERE status = 'pending' AND persona_id = $5 AND run_at <= $1::bigint
        ORDER BY priority DESC, run_at, task_id
        LIMIT $6
        FOR UPDATE SKIP LOCKED),
      claimed AS (
        UPDATE task_status s SET ${CLAIM_SET}
        FROM picked WHERE s.task_id = picked.task_id
        ${CLAIM_RETURNING}, s.last_error),
      logged AS (
        INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
        SELECT task_id, 'task:claimed', $1::bigint, $2, attempts, json_build_object('leaseExpiresAt', lease_expires_at)::text FROM claimed)
      SELECT c.task_id, c.attempts, c.max_attempts, c.lease_token, c.lease_expires_at, c.ready_at, c.run_at, c.priority, c.last_error,
        t.title, t.description, t.persona_id, t.payload, t.parent_id, t.timeout_ms,
        (SELECT json_agg(json_build_object('id', dt.id, 'title', dt.title, 'persona', dt.persona_id, 'status', ds.status, 'result', ds.result) ORDER BY d.depends_on)
         FROM task_dependencies d JOIN tasks dt ON dt.id = d.depends_on JOIN task_status ds ON ds.task_id = d.depends_on
         WHERE d.task_id = c.task_id) AS deps,
        (SELECT json_agg(json_build_object('question', h.question, 'answer', h.answer, 'attempt', h.attempt,
                  'askedAt', h.asked_at, 'answeredAt', h.answered_at, 'answeredBy', h.answered_by) ORDER BY h.id)
         FROM human_requests h WHERE h.task_id = c.task_id AND h.kind = 'input' AND h.outcome = 'answered') AS inputs
      FROM claimed c JOIN tasks t ON t.id = c.task_id`);

/** The claim of one named task, if it is ready now. Params as PG_CLAIM_SQL, $5 the task id. */
const CLAIM_ONE_SQL = `
      UPDATE task_status s SET ${CLAIM_SET}
      WHERE s.task_id = $5 AND s.status = 'pending' AND s.run_at <= $1::bigint
      ${CLAIM_RETURNING}`;

/**
 * Completing a task decrements its dependents' counters (rule 2); a waiting task
 * whose last unmet dependency this was becomes pending. Old values on the right.
 */
export const PG_COMPLETE_DEPENDENCIES_SQL = `
      UPDATE task_status SET
        unmet_deps = unmet_deps - 1,
        status     = CASE WHEN status = 'waiting' AND unmet_deps = 1 THEN 'pending' ELSE status END,
        ready_at   = CASE WHEN status = 'waiting' AND unmet_deps = 1 THEN greatest(run_at, $2::bigint) ELSE ready_at END,
        updated_at = $2::bigint
      WHERE task_id IN (SELECT task_id FROM task_dependencies WHERE depends_on = $1) AND unmet_deps > 0
      RETURNING task_id, status, persona_id`;

/** lockInIdOrder's statement: FOR UPDATE after ORDER BY locks the rows in that order. */
const LOCK_IN_ID_ORDER_SQL = prepared("SELECT task_id FROM task_status WHERE task_id = ANY($1::bigint[]) ORDER BY task_id FOR UPDATE");

/** A lease is current until settled, reaped or cancelled: fencing is by token alone, never by a clock. */
const LEASED = "task_id = $1 AND lease_token = $2 AND status IN ('claimed','in_progress')";

/** A row of PG_CLAIM_SQL: the lease, the task, its dependencies (JSON, results as stored text). */
type ClaimedRow = ClaimRow & ClaimDetail & {
  deps: DependencyRow[] | null;
  inputs: HumanInput[] | null;
};
type LeasedRow = { persona_id: string; attempts: number; max_attempts: number; assigned_agent_id: string | null; retry_policy: string; claimed_at: number | null };

const LOST: { ok: false; code: "LEASE_LOST" } = Object.freeze({ ok: false, code: "LEASE_LOST" });

function newLeaseToken(): string {
  return randomBytes(12).toString("base64url");
}

/**
 * The fenced state machine of a task (rules 3, 4, 6, 7, 8, 9) on PostgreSQL, as
 * src/store/sqlite/transitions.ts: every method runs in the caller's transaction,
 * writes its task_events rows there and queues its notification for after the
 * commit. Rows read before a conditional write are locked (FOR UPDATE), since
 * other hosts write concurrently (READ COMMITTED).
 */
export class PgTransitions {
  /** The claim's economic gates (docs/ARCHITECTURE.md rule 15): checked by both claims, moved by settlements. */
  readonly gates = new PgGates();
  /** The claim statements that skip held tasks and full concurrency keys, by [holds, keys]. */
  private readonly skipping = new Map<string, string>();

  constructor(private readonly maxPayloadBytes: number) {}

  async event(tx: Tx, taskId: number | null, type: string, now: number, agentId: string | null, attempt: number | null, data?: unknown): Promise<void> {
    await tx.run("INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES ($1, $2, $3, $4, $5, $6)", [
      taskId,
      type,
      now,
      agentId,
      attempt,
      data === undefined ? null : JSON.stringify(data),
    ]);
  }

  /**
   * The claim behind the economic gates (rule 15). With the lease known (the supervisor
   * passes it), first the plain statement guarded by the gates' cheap existence probes
   * (evaluated once, before the seek): while no gate is active for the persona a claim is
   * that one statement. Otherwise, or when it took nothing, the persona's gate read (which
   * also gives its lease) says nothing, fewer (a rate window, a breaker's probe) or all,
   * and the plain statement runs unless holds or running concurrency keys need the
   * skipping one (src/store/postgres/gates.ts).
   */
  async claim(tx: Tx, params: ClaimParams & { persona: string }): Promise<ClaimedTask[]> {
    const limit = Math.min(Math.max(1, Math.trunc(params.limit ?? 1)), CLAIM_LIMIT_MAX);
    if (params.leaseMs !== undefined && !this.gates.likelyGated(params.persona)) {
      const rows = await tx.rows<ClaimedRow>(this.ungatedSql(), [params.now, params.agentId, newLeaseToken(), params.leaseMs, params.persona, limit]);
      if (rows.length > 0) return this.leased(tx, rows, params, params.leaseMs);
    }
    const gate = await this.gates.gate(tx, params.persona, params.now, limit);
    if (gate.limit <= 0) {
      tx.emit("claim:gated", { persona: params.persona, codes: gate.reasons.map((r) => r.code), until: gate.until });
      return [];
    }
    const leaseMs = params.leaseMs ?? gate.leaseMs;
    const rows = await tx.rows<ClaimedRow>(gate.skipHeld ? this.skippingSql(gate.holds, gate.keysBusy) : PG_CLAIM_SQL, [
      params.now,
      params.agentId,
      newLeaseToken(),
      leaseMs,
      params.persona,
      gate.limit,
    ]);
    await this.gates.claimed(tx, params.persona, gate, rows.map((r) => r.task_id), params.now);
    return this.leased(tx, rows, params, leaseMs);
  }

  /** The claimed rows as the attempts' tasks, best first, with their notification. */
  private leased(tx: Tx, rows: ClaimedRow[], params: ClaimParams, leaseMs: number): ClaimedTask[] {
    if (rows.length === 0) return [];
    const claimed = rows.sort(byClaimOrder).map((row): ClaimedTask => ({
      ...claimedTask(row, row, (row.deps ?? []).map(dependencyResult), leaseMs, params.now),
      ...(row.inputs === null ? {} : { inputs: row.inputs }),
    }));
    tx.emit("task:claimed", { agentId: params.agentId, tasks: claimed.map((t) => ({ id: t.id, persona: t.persona, attempt: t.attempt, readyAt: t.readyAt, claimedAt: t.claimedAt })) });
    return claimed;
  }

  private ungatedSql(): string {
    let sql = this.skipping.get("ungated");
    if (sql === undefined) this.skipping.set("ungated", (sql = ungatedClaimSql(PG_CLAIM_SQL)));
    return sql;
  }

  private skippingSql(holds: boolean, keys: boolean): string {
    const id = `${holds}:${keys}`;
    let sql = this.skipping.get(id);
    if (sql === undefined) this.skipping.set(id, (sql = prepared(skippingClaimSql(PG_CLAIM_SQL, holds, keys))));
    return sql;
  }

  async claimOne(tx: Tx, params: { taskId: number; agentId: string; leaseMs?: number | undefined; now: number }): Promise<ClaimedTask | null> {
    const row = await tx.one<{ persona_id: string }>("SELECT persona_id FROM task_status WHERE task_id = $1", [params.taskId]);
    if (row === undefined) return null;
    // Behind the same economic gates as a persona's claim (rule 15).
    const gate = await this.gates.gate(tx, row.persona_id, params.now, 1);
    if (gate.limit <= 0) {
      tx.emit("claim:gated", { persona: row.persona_id, codes: gate.reasons.map((r) => r.code), until: gate.until });
      return null;
    }
    const leaseMs = params.leaseMs ?? gate.leaseMs;
    const rows = await tx.rows<ClaimRow>(CLAIM_ONE_SQL, [params.now, params.agentId, newLeaseToken(), leaseMs, params.taskId]);
    await this.gates.claimed(tx, row.persona_id, gate, rows.map((r) => r.task_id), params.now);
    return (await this.claimed(tx, rows, params.agentId, leaseMs, params.now))[0] ?? null;
  }

  private async claimed(tx: Tx, rows: ClaimRow[], agentId: string, leaseMs: number, now: number): Promise<ClaimedTask[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.task_id);
    const details = new Map(
      (
        await tx.rows<ClaimDetail & { id: number }>(
          `SELECT t.id, t.title, t.description, t.persona_id, t.payload, t.parent_id, t.timeout_ms, s.last_error
           FROM tasks t JOIN task_status s ON s.task_id = t.id WHERE t.id = ANY($1::bigint[])`,
          [ids],
        )
      ).map((r) => [r.id, r]),
    );
    const deps = new Map<number, DependencyResult[]>();
    for (const row of await tx.rows<DependencyRow & { for_id: number }>(
      `SELECT d.task_id AS for_id, t.id, t.title, t.persona_id AS persona, s.status, s.result
       FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on JOIN task_status s ON s.task_id = d.depends_on
       WHERE d.task_id = ANY($1::bigint[]) ORDER BY d.task_id, d.depends_on`,
      [ids],
    )) {
      let list = deps.get(row.for_id);
      if (list === undefined) deps.set(row.for_id, (list = []));
      list.push(dependencyResult(row));
    }
    const claimed = rows.sort(byClaimOrder).map((row) => claimedTask(row, details.get(row.task_id)!, deps.get(row.task_id) ?? [], leaseMs, now));
    await tx.run(
      `INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
       SELECT u.id, 'task:claimed', $4, $5, u.attempt, json_build_object('leaseExpiresAt', u.expires)::text
       FROM unnest($1::bigint[], $2::int[], $3::bigint[]) AS u(id, attempt, expires)`,
      [claimed.map((t) => t.id), claimed.map((t) => t.attempt), claimed.map((t) => t.leaseExpiresAt), now, agentId],
    );
    tx.emit("task:claimed", { agentId, tasks: claimed.map((t) => ({ id: t.id, persona: t.persona, attempt: t.attempt, readyAt: t.readyAt, claimedAt: t.claimedAt })) });
    return claimed;
  }

  async start(tx: Tx, params: { taskId: number; leaseToken: string; now: number }): Promise<LeaseResult> {
    const row = await tx.one<{ attempts: number; assigned_agent_id: string | null }>(
      `UPDATE task_status SET status = 'in_progress', started_at = coalesce(started_at, $3::bigint), updated_at = $3::bigint
       WHERE ${LEASED} RETURNING attempts, assigned_agent_id`,
      [params.taskId, params.leaseToken, params.now],
    );
    if (row === undefined) return this.lost(tx, params.taskId, "start");
    await this.event(tx, params.taskId, "task:started", params.now, row.assigned_agent_id, row.attempts);
    tx.emit("task:started", { taskId: params.taskId });
    return { ok: true };
  }

  /**
   * Locks these tasks' rows in task id order, the one order in which every transaction
   * that locks several task_status rows takes them (docs/ARCHITECTURE.md, "PostgreSQL and
   * beyond one machine"): a supervisor's renewal, start batch and settlement batch run at
   * once on separate connections, and another host's reap among them; two that took shared
   * rows in different orders deadlocked, which PostgreSQL breaks only after
   * deadlock_timeout (1 s), long enough for a 500 ms lease to go unrenewed (issue 19).
   */
  async lockInIdOrder(tx: Tx, taskIds: readonly number[]): Promise<void> {
    if (taskIds.length > 0) await tx.run(LOCK_IN_ID_ORDER_SQL, [taskIds]);
  }

  /**
   * start() for many leases in two statements (the supervisor writes starts in
   * batches): one fenced UPDATE over unnest, one INSERT of their task:started events.
   * Results in the order given; a lease no longer current is LEASE_LOST. The rows are
   * locked in task id order first (lockInIdOrder): the UPDATE alone takes them in its plan's order.
   */
  async startMany(tx: Tx, starts: ReadonlyArray<{ taskId: number; leaseToken: string; now: number }>): Promise<LeaseResult[]> {
    await this.lockInIdOrder(tx, starts.map((x) => x.taskId));
    const rows = await tx.rows<{ task_id: number; token: string; attempts: number; assigned_agent_id: string | null; at: number }>(
      prepared(`UPDATE task_status s SET status = 'in_progress', started_at = coalesce(s.started_at, b.at), updated_at = b.at
       FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS b(id, token, at)
       WHERE s.task_id = b.id AND s.lease_token = b.token AND s.status IN ('claimed','in_progress')
       RETURNING s.task_id, b.token, s.attempts, s.assigned_agent_id, b.at`),
      [starts.map((x) => x.taskId), starts.map((x) => x.leaseToken), starts.map((x) => x.now)],
    );
    if (rows.length > 0) {
      await tx.run(
        prepared(`INSERT INTO task_events (task_id, type, at, agent_id, attempt)
         SELECT u.id, 'task:started', u.at, u.agent, u.attempt FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[]) AS u(id, at, agent, attempt)`),
        [rows.map((r) => r.task_id), rows.map((r) => r.at), rows.map((r) => r.assigned_agent_id), rows.map((r) => r.attempts)],
      );
    }
    // Keyed by lease, not task: a batch may name an old attempt's lease beside the current one.
    const started = new Set(rows.map((r) => `${r.task_id} ${r.token}`));
    return starts.map((x) => {
      if (!started.has(`${x.taskId} ${x.leaseToken}`)) return this.lost(tx, x.taskId, "start");
      tx.emit("task:started", { taskId: x.taskId });
      return { ok: true };
    });
  }

  async progress(tx: Tx, params: { taskId: number; leaseToken: string; fraction: number; message?: string | undefined; now: number }): Promise<LeaseResult> {
    if (!Number.isFinite(params.fraction) || params.fraction < 0 || params.fraction > 1) {
      throw new RosterError("VALIDATION", `fraction: must be a number from 0 to 1, got ${String(params.fraction)}`, { details: { field: "fraction" } });
    }
    const message = params.message === undefined ? null : String(params.message).slice(0, 1000);
    const row = await tx.one<{ attempts: number; assigned_agent_id: string | null }>(
      `UPDATE task_status SET progress = $3, progress_message = $4, updated_at = $5::bigint WHERE ${LEASED} RETURNING attempts, assigned_agent_id`,
      [params.taskId, params.leaseToken, params.fraction, message, params.now],
    );
    if (row === undefined) return this.lost(tx, params.taskId, "progress");
    await this.event(tx, params.taskId, "task:progress", params.now, row.assigned_agent_id, row.attempts, { fraction: params.fraction, message });
    tx.emit("task:progress", { taskId: params.taskId, fraction: params.fraction, message });
    return { ok: true };
  }

  /**
   * Validates result and children before any write, so a bad output changes nothing.
   * What the attempt spent is recorded with it (rule 15).
   */
  async complete(tx: Tx, params: CompleteParams): Promise<CompleteResult> {
    const result = params.result === undefined ? null : serializeJson(params.result, "result", this.maxPayloadBytes);
    const children = params.children === undefined || params.children.length === 0 ? null : validateBatch(params.children, this.maxPayloadBytes);
    const usage = usageOfSettlement(params.usage, params.result);
    const row = await tx.one<{ persona_id: string; attempts: number; assigned_agent_id: string | null; claimed_at: number | null }>(
      `UPDATE task_status SET status = 'completed', result = $3, progress = 1, finished_at = $4::bigint,
         lease_token = NULL, lease_expires_at = NULL, updated_at = $4::bigint
       WHERE ${LEASED} RETURNING persona_id, attempts, assigned_agent_id, claimed_at`,
      [params.taskId, params.leaseToken, result, params.now],
    );
    if (row === undefined) return this.lost(tx, params.taskId, "complete");
    await this.attemptSpent(tx, params.taskId, row.attempts, row.assigned_agent_id, row.claimed_at, "completed", usage, params.now);
    this.gates.succeeded(tx, row.persona_id, 1, params.now);
    const ready = await this.completeDependencies(tx, params.taskId, params.now);
    let childIds: number[] = [];
    let childRefs: Record<string, number> = {};
    if (children !== null) {
      const written = await writeBatch(tx, children, { parentId: params.taskId, createdBy: row.assigned_agent_id, now: params.now });
      childIds = written.ids;
      childRefs = written.refs;
      tx.emit("task:enqueued", { ids: written.created, personas: written.personas, ready: written.statuses.filter((s) => s === "pending").length });
    }
    await this.event(tx, params.taskId, "task:completed", params.now, row.assigned_agent_id, row.attempts, {
      readied: ready.length,
      ...(childIds.length > 0 ? { children: childIds } : {}),
    });
    tx.emit("task:completed", { taskId: params.taskId, persona: row.persona_id, attempt: row.attempts, readied: ready.length, children: childIds.length });
    if (ready.length > 0) tx.emit("task:ready", readyEvent(ready));
    return { ok: true, outcome: "completed", attempt: row.attempts, childIds, childRefs };
  }

  private async leasedRow(tx: Tx, taskId: number, leaseToken: string): Promise<LeasedRow | undefined> {
    return tx.one<LeasedRow>(
      `SELECT s.persona_id, s.attempts, s.max_attempts, s.assigned_agent_id, t.retry_policy, s.claimed_at
       FROM task_status s JOIN tasks t ON t.id = s.task_id
       WHERE s.task_id = $1 AND s.lease_token = $2 AND s.status IN ('claimed','in_progress')
       FOR UPDATE OF s`,
      [taskId, leaseToken],
    );
  }

  async fail(tx: Tx, params: FailParams): Promise<FailResult> {
    const row = await this.leasedRow(tx, params.taskId, params.leaseToken);
    if (row === undefined) return this.lost(tx, params.taskId, "fail");
    const retryable = (params.error as { retryable?: boolean }).retryable ?? true;
    const error = storedError(params.error, retryable);
    const usage = usageOfSettlement(params.usage, error.details);
    // A provider's rate or usage limit is nobody's fault: the attempt is given back
    // uncounted and every persona on that account pauses (docs/economics.md).
    const failure = providerLimit(error);
    if (failure !== null) {
      const until = await this.gates.pause(tx, { persona: row.persona_id, taskId: params.taskId, ...failure, now: params.now });
      const runAt = until ?? params.now;
      await this.attemptSpent(tx, params.taskId, row.attempts, row.assigned_agent_id, row.claimed_at, "released", usage, params.now);
      await this.release(tx, { taskId: params.taskId, leaseToken: params.leaseToken, reason: `${failure.failure}: ${error.message.slice(0, 200)}`, delayMs: runAt - params.now, now: params.now });
      return { ok: true, outcome: "released", attempt: row.attempts, runAt };
    }
    // Aborted by the supervisor for its budget (src/supervisor/budget-watch.ts): its usage is recorded (which
    // holds the task or goal once spent) and the attempt given back uncounted; with no budget at all it is an
    // ordinary failure, so an adapter cannot loop by raising the code itself (docs/economics.md).
    if (error.code === "BUDGET_EXHAUSTED" && (await this.gates.budgeted(tx, params.taskId))) {
      await this.attemptSpent(tx, params.taskId, row.attempts, row.assigned_agent_id, row.claimed_at, "budget_exhausted", usage, params.now);
      await this.release(tx, { taskId: params.taskId, leaseToken: params.leaseToken, reason: `BUDGET_EXHAUSTED: ${error.message.slice(0, 200)}`, now: params.now });
      return { ok: true, outcome: "released", attempt: row.attempts, runAt: params.now };
    }
    const settled = await this.settleFailure(tx, {
      taskId: params.taskId,
      persona: row.persona_id,
      attempt: row.attempts,
      maxAttempts: row.max_attempts,
      policy: JSON.parse(row.retry_policy) as RetryPolicy,
      agentId: row.assigned_agent_id,
      error,
      retryable,
      now: params.now,
      random: params.random ?? Math.random,
    });
    if (settled.ok) await this.attemptSpent(tx, params.taskId, row.attempts, row.assigned_agent_id, row.claimed_at, settled.outcome, usage, params.now);
    return settled;
  }

  private async attemptSpent(tx: Tx, taskId: number, attempt: number, agentId: string | null, claimedAt: number | null, outcome: string, usage: NormalUsage | null, now: number): Promise<void> {
    // Recorded with the other settlements' at the end of the transaction, in one statement (PgGates.within).
    if (usage !== null) this.gates.spent(tx, { taskId, attempt, agentId, outcome, claimedAt, usage, now });
  }

  /** Shared by fail and the reaper: back to pending with backoff, or failed for good (dependents blocked). */
  async settleFailure(
    tx: Tx,
    p: { taskId: number; persona: string; attempt: number; maxAttempts: number; policy: RetryPolicy; agentId: string | null; error: ErrorObject; retryable: boolean; now: number; random: () => number },
  ): Promise<CountedFailure> {
    const errorJson = JSON.stringify(p.error);
    this.gates.failed(tx, p.persona, p.taskId, p.now);
    const policy = { ...p.policy, maxAttempts: p.maxAttempts };
    if (p.retryable && hasAttemptsLeft(p.attempt, policy)) {
      const runAt = nextRunAt(p.attempt, policy, p.now, p.random);
      await tx.run(
        `UPDATE task_status SET status = 'pending', run_at = $2::bigint, ready_at = $2::bigint, last_error = $3,
           assigned_agent_id = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = $4::bigint
         WHERE task_id = $1`,
        [p.taskId, runAt, errorJson, p.now],
      );
      await parkForApproval(tx, [{ id: p.taskId }], p.now);
      await this.event(tx, p.taskId, "task:retrying", p.now, p.agentId, p.attempt, { runAt, error: { code: p.error.code, message: p.error.message } });
      tx.emit("task:retrying", { taskId: p.taskId, persona: p.persona, attempt: p.attempt, runAt });
      return { ok: true, outcome: "retrying", attempt: p.attempt, runAt, code: p.error.code };
    }
    await tx.run(
      `UPDATE task_status SET status = 'failed', last_error = $2, finished_at = $3::bigint, lease_token = NULL, lease_expires_at = NULL, updated_at = $3::bigint
       WHERE task_id = $1`,
      [p.taskId, errorJson, p.now],
    );
    const blocked = await this.blockDependents(tx, p.taskId, p.now);
    await this.event(tx, p.taskId, "task:failed", p.now, p.agentId, p.attempt, { error: { code: p.error.code, message: p.error.message }, retryable: p.retryable, blocked: blocked.length });
    tx.emit("task:failed", { taskId: p.taskId, persona: p.persona, attempt: p.attempt, blocked: blocked.length });
    return { ok: true, outcome: "failed", attempt: p.attempt, blocked, code: p.error.code };
  }

  async release(tx: Tx, params: ReleaseParams): Promise<SettlementResult> {
    const runAt = params.now + (params.delayMs ?? 0);
    const holder = await this.leasedRow(tx, params.taskId, params.leaseToken);
    if (holder === undefined) return this.lost(tx, params.taskId, "release");
    const row = await tx.one<{ persona_id: string; attempts: number }>(
      `UPDATE task_status SET status = 'pending', attempts = greatest(attempts - 1, 0), run_at = $3::bigint, ready_at = $3::bigint,
         assigned_agent_id = NULL, lease_token = NULL, lease_expires_at = NULL, started_at = NULL, updated_at = $4::bigint
       WHERE ${LEASED} RETURNING persona_id, attempts`,
      [params.taskId, params.leaseToken, runAt, params.now],
    );
    if (row === undefined) return this.lost(tx, params.taskId, "release");
    await parkForApproval(tx, [{ id: params.taskId }], params.now);
    if (params.usage !== undefined) {
      await this.attemptSpent(tx, params.taskId, row.attempts + 1, holder.assigned_agent_id, holder.claimed_at, "released", usageOfSettlement(params.usage, null), params.now);
    }
    await this.event(tx, params.taskId, "task:released", params.now, holder.assigned_agent_id, row.attempts + 1, { reason: params.reason ?? null, runAt });
    tx.emit("task:released", { taskId: params.taskId, persona: row.persona_id });
    return { ok: true, outcome: "released", attempt: row.attempts + 1, runAt };
  }

  async cancel(tx: Tx, params: { taskId: number; reason?: string | undefined; by?: string | undefined; now: number }): Promise<{ cancelled: number[]; blocked: number[] }> {
    const row = await this.requireTask(tx, params.taskId);
    if (row.status === "completed" || row.status === "failed" || row.status === "cancelled") {
      throw new RosterError("INVALID_STATE", `task ${params.taskId} is ${row.status}; only unfinished tasks can be cancelled`, { details: { taskId: params.taskId, status: row.status } });
    }
    await tx.run(
      `UPDATE task_status SET status = 'cancelled', finished_at = $2::bigint, lease_token = NULL, lease_expires_at = NULL, updated_at = $2::bigint
       WHERE task_id = $1 AND status NOT IN ('completed','failed','cancelled')`,
      [params.taskId, params.now],
    );
    const blocked = await this.blockDependents(tx, params.taskId, params.now);
    await this.event(tx, params.taskId, "task:cancelled", params.now, params.by ?? null, row.attempts, { from: row.status, reason: params.reason ?? null, blocked: blocked.length });
    tx.emit("task:cancelled", { taskIds: [params.taskId], persona: row.persona_id });
    return { cancelled: [params.taskId], blocked };
  }

  async retry(tx: Tx, params: { taskId: number; by?: string | undefined; now: number }): Promise<{ status: TaskState; unblocked: number[] }> {
    const row = await this.requireTask(tx, params.taskId);
    if (row.status !== "failed" && row.status !== "cancelled") {
      throw new RosterError("INVALID_STATE", `task ${params.taskId} is ${row.status}; only failed or cancelled tasks can be retried`, { details: { taskId: params.taskId, status: row.status } });
    }
    const status: TaskState = row.unmet_deps === 0 ? "pending" : (await this.blockedDependencyCount(tx, params.taskId)) > 0 ? "blocked" : "waiting";
    await tx.run(
      `UPDATE task_status SET status = $2, attempts = 0, run_at = $3::bigint, ready_at = CASE WHEN $2 = 'pending' THEN $3::bigint END,
         finished_at = NULL, assigned_agent_id = NULL, lease_token = NULL, lease_expires_at = NULL,
         progress = NULL, progress_message = NULL, result = NULL, updated_at = $3::bigint
       WHERE task_id = $1 AND status IN ('failed','cancelled')`,
      [params.taskId, status, params.now],
    );
    if (status === "pending") await parkForApproval(tx, [{ id: params.taskId }], params.now);
    await this.event(tx, params.taskId, "task:retried", params.now, params.by ?? null, 0, { from: row.status, status });
    const unblocked = status === "blocked" ? [] : await this.unblockDependents(tx, params.taskId, params.now, params.by ?? null);
    tx.emit("task:retried", { taskId: params.taskId, persona: row.persona_id });
    if (status === "pending") tx.emit("task:ready", { ids: [params.taskId], personas: [row.persona_id] });
    return { status, unblocked };
  }

  async addDependency(tx: Tx, params: { taskId: number; dependsOn: number; by?: string | undefined; now: number }): Promise<{ status: TaskState }> {
    const { taskId, dependsOn, now } = params;
    if (taskId === dependsOn) throw new RosterError("SELF_DEPENDENCY", `dependsOn: task ${taskId} cannot depend on itself`, { details: { field: "dependsOn", taskId } });
    const task = await this.requireTask(tx, taskId);
    const dep = await tx.one<{ status: TaskState }>("SELECT status FROM task_status WHERE task_id = $1 FOR SHARE", [dependsOn]);
    if (dep === undefined) throw new RosterError("DEPENDENCY_NOT_FOUND", `dependsOn: task ${dependsOn} does not exist`, { details: { field: "dependsOn", taskId: dependsOn } });
    if (task.status !== "waiting" && task.status !== "pending" && task.status !== "blocked") {
      throw new RosterError("INVALID_STATE", `taskId: task ${taskId} is ${task.status}; dependencies can only be added before it runs`, { details: { field: "taskId", status: task.status } });
    }
    if ((await tx.one("SELECT 1 FROM task_dependencies WHERE task_id = $1 AND depends_on = $2", [taskId, dependsOn])) !== undefined) return { status: task.status };
    const path = await this.dependencyPath(tx, dependsOn, taskId);
    if (path !== null) {
      const cycle = [taskId, ...path];
      throw new RosterError("DEPENDENCY_CYCLE", `dependsOn: adding ${taskId} -> ${dependsOn} would close the cycle ${cycle.join(" -> ")}`, { details: { field: "dependsOn", cycle } });
    }
    await tx.run("INSERT INTO task_dependencies (task_id, depends_on) VALUES ($1, $2)", [taskId, dependsOn]);
    let status: TaskState = task.status;
    if (dep.status !== "completed") {
      const bad = dep.status === "failed" || dep.status === "cancelled" || dep.status === "blocked";
      status = (
        await tx.one<{ status: TaskState }>(
          `UPDATE task_status SET unmet_deps = unmet_deps + 1, updated_at = $2::bigint,
             status = CASE WHEN $3::boolean THEN 'blocked' WHEN status = 'pending' THEN 'waiting' ELSE status END,
             ready_at = CASE WHEN status = 'pending' THEN NULL ELSE ready_at END
           WHERE task_id = $1 RETURNING status`,
          [taskId, now, bad],
        )
      )!.status;
      if (bad && task.status !== "blocked") await this.blockDependents(tx, taskId, now);
    }
    await this.event(tx, taskId, "dependency:added", now, params.by ?? null, null, { dependsOn, status });
    return { status };
  }

  // ---- the dependency graph ----

  async completeDependencies(tx: Tx, taskId: number, now: number): Promise<Readied[]> {
    await this.lockDependents(tx, [taskId]);
    const rows = await tx.rows<{ task_id: number; status: TaskState; persona_id: string }>(PG_COMPLETE_DEPENDENCIES_SQL, [taskId, now]);
    const ready = rows.filter((r) => r.status === "pending").map((r) => ({ id: r.task_id, persona: r.persona_id }));
    // A parked one is still reported readied (task:ready names it), as when the gate was a trigger.
    await parkForApproval(tx, ready, now);
    if (ready.length > 0) {
      await tx.run(
        "INSERT INTO task_events (task_id, type, at, data) SELECT u.id, 'task:ready', $2, json_build_object('after', $3::bigint)::text FROM unnest($1::bigint[]) AS u(id)",
        [ready.map((r) => r.id), now, taskId],
      );
    }
    return ready;
  }

  /**
   * Locks the dependents of `done` in task id order before their counters change.
   * Completions on several hosts decrement shared dependents; taking the row locks in
   * one order keeps two such transactions from deadlocking (which PostgreSQL only
   * detects after deadlock_timeout, a second by default).
   */
  private async lockDependents(tx: Tx, done: number[]): Promise<void> {
    await tx.run(
      `SELECT task_id FROM task_status WHERE task_id IN (SELECT task_id FROM task_dependencies WHERE depends_on = ANY($1::bigint[]))
       ORDER BY task_id FOR UPDATE`,
      [done],
    );
  }

  /**
   * complete() for many tasks without children, in a few set-based statements (the
   * completer's hot path), as the SQLite store's completeMany: the same rows, events
   * and notifications, each task fenced by its own lease; the completed rows and then
   * their dependents locked in id order. `resultJson` already validated. A dependent
   * readied by several of these records the highest of their ids as `after`.
   */
  async completeMany(
    tx: Tx,
    items: ReadonlyArray<{ taskId: number; leaseToken: string; resultJson: string | null; usage: NormalUsage | null }>,
    now: number,
  ): Promise<CompleteResult[]> {
    const ids = items.map((i) => i.taskId);
    await this.lockInIdOrder(tx, ids);
    // One statement completes the rows and writes the task:completed events of those without
    // dependents (they ready nothing); the others' events wait for their counts below. It runs after
    // the lock above, so its snapshot sees every edge to these tasks (see has_dependents).
    const rows = await tx.rows<{ task_id: number; persona_id: string; attempts: number; assigned_agent_id: string | null; claimed_at: number | null; has_dependents: boolean }>(
      prepared(`WITH done AS (
         UPDATE task_status s SET status = 'completed', result = b.result, progress = 1, finished_at = $4::bigint,
           lease_token = NULL, lease_expires_at = NULL, updated_at = $4::bigint
         FROM unnest($1::bigint[], $2::text[], $3::text[]) AS b(id, token, result)
         WHERE s.task_id = b.id AND s.lease_token = b.token AND s.status IN ('claimed','in_progress')
         RETURNING s.task_id, s.persona_id, s.attempts, s.assigned_agent_id, s.claimed_at,
           EXISTS (SELECT 1 FROM task_dependencies d WHERE d.depends_on = s.task_id) AS has_dependents),
       logged AS (
         INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
         SELECT task_id, 'task:completed', $4::bigint, assigned_agent_id, attempts, json_build_object('readied', 0)::text
         FROM done WHERE NOT has_dependents ORDER BY task_id)
       SELECT task_id, persona_id, attempts, assigned_agent_id, claimed_at, has_dependents FROM done`),
      [ids, items.map((i) => i.leaseToken), items.map((i) => i.resultJson), now],
    );
    const readiedBy = new Map<number, number>();
    const ready: Readied[] = [];
    const withDependents = rows.filter((r) => r.has_dependents);
    if (withDependents.length > 0) {
      // Edges to a task are written under a FOR SHARE of it, which our lock above excludes: the ones
      // seen here are all there are, and a batch without dependents skips the counters' statements.
      await this.decrementDependents(
        tx,
        rows.map((r) => r.task_id),
        now,
        readiedBy,
        ready,
      );
      await tx.run(
        prepared(`INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
         SELECT u.id, 'task:completed', $5, u.agent, u.attempt, json_build_object('readied', u.readied)::text
         FROM unnest($1::bigint[], $2::text[], $3::int[], $4::int[]) AS u(id, agent, attempt, readied)`),
        [
          withDependents.map((r) => r.task_id),
          withDependents.map((r) => r.assigned_agent_id),
          withDependents.map((r) => r.attempts),
          withDependents.map((r) => readiedBy.get(r.task_id) ?? 0),
          now,
        ],
      );
    }
    const byId = new Map(rows.map((r) => [r.task_id, r]));
    for (const item of items) {
      const row = byId.get(item.taskId);
      if (row !== undefined) await this.attemptSpent(tx, row.task_id, row.attempts, row.assigned_agent_id, row.claimed_at, "completed", item.usage, now);
    }
    for (const persona of new Set(rows.map((r) => r.persona_id))) this.gates.succeeded(tx, persona, rows.filter((r) => r.persona_id === persona).length, now);
    const results = items.map((item): CompleteResult => {
      const row = byId.get(item.taskId);
      if (row === undefined) return this.lost(tx, item.taskId, "complete");
      const count = readiedBy.get(row.task_id) ?? 0;
      tx.emit("task:completed", { taskId: row.task_id, persona: row.persona_id, attempt: row.attempts, readied: count, children: 0 });
      return { ok: true, outcome: "completed", attempt: row.attempts, childIds: [], childRefs: {} };
    });
    if (ready.length > 0) tx.emit("task:ready", readyEvent(ready));
    return results;
  }

  /**
   * completeMany's dependents: locks them in task id order, decrements their counters
   * by how many of `done` each waited on, writes task:ready for those now pending and
   * counts in `readiedBy` (completed task → dependents it readied) the highest id.
   */
  private async decrementDependents(tx: Tx, done: number[], now: number, readiedBy: Map<number, number>, readied: Readied[]): Promise<void> {
    await this.lockDependents(tx, done);
    const changed = await tx.rows<{ task_id: number; status: TaskState; persona_id: string }>(
      `UPDATE task_status s SET
         unmet_deps = greatest(s.unmet_deps - c.n, 0),
         status     = CASE WHEN s.status = 'waiting' AND s.unmet_deps <= c.n THEN 'pending' ELSE s.status END,
         ready_at   = CASE WHEN s.status = 'waiting' AND s.unmet_deps <= c.n THEN greatest(s.run_at, $2::bigint) ELSE s.ready_at END,
         updated_at = $2::bigint
       FROM (SELECT d.task_id AS id, count(*)::int AS n FROM task_dependencies d WHERE d.depends_on = ANY($1::bigint[]) GROUP BY d.task_id) AS c
       WHERE s.task_id = c.id AND s.unmet_deps > 0
       RETURNING s.task_id, s.status, s.persona_id`,
      [done, now],
    );
    for (const r of changed) if (r.status === "pending") readied.push({ id: r.task_id, persona: r.persona_id });
    const ready = readied.map((r) => r.id);
    await parkForApproval(tx, readied, now);
    if (ready.length > 0) {
      const after = await tx.rows<{ id: number; after: number }>(
        `SELECT d.task_id AS id, max(d.depends_on) AS after FROM task_dependencies d
         WHERE d.task_id = ANY($1::bigint[]) AND d.depends_on = ANY($2::bigint[]) GROUP BY d.task_id`,
        [ready, done],
      );
      await tx.run(
        "INSERT INTO task_events (task_id, type, at, data) SELECT u.id, 'task:ready', $3, json_build_object('after', u.after)::text FROM unnest($1::bigint[], $2::bigint[]) AS u(id, after)",
        [after.map((a) => a.id), after.map((a) => a.after), now],
      );
      for (const a of after) readiedBy.set(a.after, (readiedBy.get(a.after) ?? 0) + 1);
    }
  }

  /** After `taskId` ended failed or cancelled: every waiting descendant becomes blocked. */
  async blockDependents(tx: Tx, taskId: number, now: number): Promise<number[]> {
    const ids = (
      await tx.rows<{ task_id: number }>(
        `WITH RECURSIVE down(id) AS (
           SELECT task_id FROM task_dependencies WHERE depends_on = $1
           UNION
           SELECT d.task_id FROM task_dependencies d JOIN down ON d.depends_on = down.id)
         UPDATE task_status SET status = 'blocked', updated_at = $2::bigint
         WHERE task_id IN (SELECT id FROM down) AND status = 'waiting'
         RETURNING task_id`,
        [taskId, now],
      )
    ).map((r) => r.task_id);
    if (ids.length > 0) {
      await tx.run(
        "INSERT INTO task_events (task_id, type, at, data) SELECT u.id, 'task:blocked', $2, json_build_object('by', $3::bigint)::text FROM unnest($1::bigint[]) AS u(id)",
        [ids, now, taskId],
      );
    }
    return ids;
  }

  private async blockedDependencyCount(tx: Tx, taskId: number): Promise<number> {
    const row = await tx.one<{ n: number }>(
      `SELECT count(*) AS n FROM task_dependencies d JOIN task_status s ON s.task_id = d.depends_on
       WHERE d.task_id = $1 AND s.status IN ('failed','cancelled','blocked')`,
      [taskId],
    );
    return row?.n ?? 0;
  }

  /** After `taskId` was retried: blocked descendants with no other failed, cancelled or blocked dependency go back to waiting, breadth first. */
  private async unblockDependents(tx: Tx, taskId: number, now: number, by: string | null): Promise<number[]> {
    const out: number[] = [];
    const queue = [taskId];
    while (queue.length > 0) {
      const current = queue.shift()!;
      const dependents = await tx.rows<{ id: number; status: TaskState }>(
        "SELECT d.task_id AS id, s.status FROM task_dependencies d JOIN task_status s ON s.task_id = d.task_id WHERE d.depends_on = $1 ORDER BY d.task_id",
        [current],
      );
      for (const row of dependents) {
        if (row.status !== "blocked") continue;
        if ((await this.blockedDependencyCount(tx, row.id)) > 0) continue;
        if ((await tx.run("UPDATE task_status SET status = 'waiting', updated_at = $1::bigint WHERE task_id = $2 AND status = 'blocked'", [now, row.id])) === 1) {
          out.push(row.id);
          await this.event(tx, row.id, "task:unblocked", now, by, null, { by: taskId });
          queue.push(row.id);
        }
      }
    }
    return out;
  }

  /** Whether `from` reaches `to` by following dependencies; the path if it does. */
  private async dependencyPath(tx: Tx, from: number, to: number): Promise<number[] | null> {
    const previous = new Map<number, number>([[from, from]]);
    const queue = [from];
    while (queue.length > 0) {
      const current = queue.shift()!;
      if (current === to) {
        const path = [to];
        let node = to;
        while (node !== from) {
          node = previous.get(node)!;
          path.unshift(node);
        }
        return path;
      }
      for (const row of await tx.rows<{ d: number }>("SELECT depends_on AS d FROM task_dependencies WHERE task_id = $1", [current])) {
        if (!previous.has(row.d)) {
          previous.set(row.d, current);
          queue.push(row.d);
        }
      }
    }
    return null;
  }

  private async requireTask(tx: Tx, taskId: number): Promise<{ status: TaskState; persona_id: string; attempts: number; unmet_deps: number }> {
    const row = await tx.one<{ status: TaskState; persona_id: string; attempts: number; unmet_deps: number }>(
      "SELECT status, persona_id, attempts, unmet_deps FROM task_status WHERE task_id = $1 FOR UPDATE",
      [taskId],
    );
    if (row === undefined) throw new RosterError("TASK_NOT_FOUND", `taskId: task ${taskId} does not exist`, { details: { field: "taskId", taskId } });
    return row;
  }

  private lost(tx: Tx, taskId: number, op: string): { ok: false; code: "LEASE_LOST" } {
    tx.emit("lease:lost", { taskId, op });
    return LOST;
  }
}
