import { readyEvent, type Readied } from "../events.js";
import { RosterError } from "../../errors.js";
import { completionJson, validateBatch } from "../input.js";
import { resultCarrier } from "../usage-values.js";
import { storedError } from "../stored-error.js";
import { failureDecision, failureEventData, failureToSettle } from "../settle.js";
import { usageOfSettlement, type NormalUsage } from "../usage-values.js";
import type { CompleteParams, CompleteResult, FailParams, FailResult, FailureToSettle, CountedFailure, LeaseResult, ReleaseParams, SettlementResult } from "../types.js";
import { prepared, type Tx } from "./database.js";
import { LOCK_IN_ID_ORDER_SQL, LOCK_LEASED_SQL, PG_COMPLETE_MANY_SQL, PG_START_MANY_SQL, type CompleteBatchRow } from "./batch-sql.js";
import { writeBatch } from "./enqueue.js";
import { PgGates } from "./gates.js";
import { personaFault, providerLimit } from "../gates.js";
import { parkForApproval } from "./approvals.js";
import { PgClaims } from "./claims.js";
import { PgGraph, insertEvent } from "./graph.js";
import { PgTaskCommands } from "./task-commands.js";

/** A lease is current until settled, reaped or cancelled: fencing is by token alone, never by a clock. */
const LEASED = "task_id = $1 AND lease_token = $2 AND status IN ('claimed','in_progress')";

type LeasedRow = { persona_id: string; attempts: number; max_attempts: number; assigned_agent_id: string | null; retry_policy: string; claimed_at: number | null };

const LOST: { ok: false; code: "LEASE_LOST" } = Object.freeze({ ok: false, code: "LEASE_LOST" });

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
  /** The claim (src/store/postgres/claims.ts). */
  readonly claims = new PgClaims(this.gates);
  /** Dependents' counters, blocking and unblocking, the cycle check (src/store/postgres/graph.ts). */
  readonly graph = new PgGraph();
  /** Cancel, retry by hand, add a dependency (src/store/postgres/task-commands.ts). */
  readonly commands = new PgTaskCommands(this.graph);

  constructor(private readonly maxPayloadBytes: number) {}

  async event(tx: Tx, taskId: number | null, type: string, now: number, agentId: string | null, attempt: number | null, data?: unknown): Promise<void> {
    await insertEvent(tx, taskId, type, now, agentId, attempt, data);
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
   * A batch's leases, fenced: their rows locked in task id order (as lockInIdOrder) and the
   * ones still leased kept, their state read under the lock, so nothing can change it before
   * this transaction ends. The batched UPDATE that follows then tests only the token: a
   * state test in its WHERE (`status IN ('claimed','in_progress')`) would let the planner
   * read the rows through task_status_agent, the partial index of leased rows, which
   * statistics taken while few rows were leased show as one row, and join the whole batch
   * to every leased row (migrations/postgres/0016, test/store/postgres-settle-plan.test.ts).
   */
  async lockLeased<T extends { taskId: number }>(tx: Tx, items: readonly T[]): Promise<T[]> {
    if (items.length === 0) return [];
    const stale = (await tx.one<{ stale: number[] | null }>(LOCK_LEASED_SQL, [items.map((i) => i.taskId)]))?.stale ?? null;
    if (stale === null) return [...items];
    const gone = new Set(stale.map(Number));
    return items.filter((i) => !gone.has(i.taskId));
  }

  /**
   * start() for many leases in two statements (the supervisor writes starts in
   * batches): one fenced UPDATE over unnest, one INSERT of their task:started events.
   * Results in the order given; a lease no longer current is LEASE_LOST. The rows are
   * locked in task id order first (lockLeased): the UPDATE alone takes them in its plan's order.
   */
  async startMany(tx: Tx, starts: ReadonlyArray<{ taskId: number; leaseToken: string; now: number }>): Promise<LeaseResult[]> {
    const leased = await this.lockLeased(tx, starts);
    type Row = { task_id: number; token: string; attempts: number; assigned_agent_id: string | null; at: number };
    const rows: Row[] =
      leased.length === 0 ? [] : await tx.rows<Row>(PG_START_MANY_SQL, [leased.map((x) => x.taskId), leased.map((x) => x.leaseToken), leased.map((x) => x.now)]);
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
    const result = completionJson(params, this.maxPayloadBytes);
    const children = params.children === undefined || params.children.length === 0 ? null : validateBatch(params.children, this.maxPayloadBytes);
    const usage = usageOfSettlement(params.usage, resultCarrier(params));
    const row = await tx.one<{ persona_id: string; attempts: number; assigned_agent_id: string | null; claimed_at: number | null }>(
      `UPDATE task_status SET status = 'completed', result = $3, progress = 1, finished_at = $4::bigint,
         lease_token = NULL, lease_expires_at = NULL, updated_at = $4::bigint
       WHERE ${LEASED} RETURNING persona_id, attempts, assigned_agent_id, claimed_at`,
      [params.taskId, params.leaseToken, result, params.now],
    );
    if (row === undefined) return this.lost(tx, params.taskId, "complete");
    await this.attemptSpent(tx, params.taskId, row.attempts, row.assigned_agent_id, row.claimed_at, "completed", usage, params.now);
    this.gates.succeeded(tx, row.persona_id, 1, params.now);
    const ready = await this.graph.completeDependencies(tx, params.taskId, params.now);
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
    const error = storedError(params.error, (params.error as { retryable?: boolean }).retryable ?? true);
    const usage = usageOfSettlement(params.usage, error.details);
    // A provider's rate or usage limit is nobody's fault: the attempt is given back
    // uncounted and every persona on that account pauses (docs/economics.md).
    const failure = providerLimit(error);
    if (failure !== null) {
      const until = await this.gates.pause(tx, { persona: row.persona_id, taskId: params.taskId, ...failure, now: params.now });
      const runAt = until ?? params.now;
      await this.attemptSpent(tx, params.taskId, row.attempts, row.assigned_agent_id, row.claimed_at, "released", usage, params.now);
      await this.release(tx, { taskId: params.taskId, leaseToken: params.leaseToken, reason: `${failure.failure}: ${error.message.slice(0, 200)}`, delayMs: runAt - params.now, error, now: params.now });
      return { ok: true, outcome: "released", attempt: row.attempts, runAt };
    }
    // The persona's own fault (its CLI not found): not the task's; given back uncounted, the persona held (gates.ts, personaFault).
    if (personaFault(error)) {
      this.gates.failed(tx, row.persona_id, params.taskId, params.now, true);
      await this.attemptSpent(tx, params.taskId, row.attempts, row.assigned_agent_id, row.claimed_at, "released", usage, params.now);
      await this.release(tx, { taskId: params.taskId, leaseToken: params.leaseToken, reason: `persona: ${error.message.slice(0, 300)}`, error, now: params.now });
      return { ok: true, outcome: "released", attempt: row.attempts, runAt: params.now };
    }
    // Aborted by the supervisor for its budget (src/supervisor/budget-watch.ts): its usage is recorded (which
    // holds the task or goal once spent) and the attempt given back uncounted; with no budget at all it is an
    // ordinary failure, so an adapter cannot loop by raising the code itself (docs/economics.md).
    if (error.code === "BUDGET_EXHAUSTED" && (await this.gates.budgeted(tx, params.taskId))) {
      await this.attemptSpent(tx, params.taskId, row.attempts, row.assigned_agent_id, row.claimed_at, "budget_exhausted", usage, params.now);
      await this.release(tx, { taskId: params.taskId, leaseToken: params.leaseToken, reason: `BUDGET_EXHAUSTED: ${error.message.slice(0, 200)}`, error, now: params.now });
      return { ok: true, outcome: "released", attempt: row.attempts, runAt: params.now };
    }
    const settled = await this.settleFailure(tx, failureToSettle(params.taskId, row, error, params));
    if (settled.ok) await this.attemptSpent(tx, params.taskId, row.attempts, row.assigned_agent_id, row.claimed_at, settled.outcome, usage, params.now);
    return settled;
  }

  private async attemptSpent(tx: Tx, taskId: number, attempt: number, agentId: string | null, claimedAt: number | null, outcome: string, usage: NormalUsage | null, now: number): Promise<void> {
    // Recorded with the other settlements' at the end of the transaction, in one statement (PgGates.within).
    if (usage !== null) this.gates.spent(tx, { taskId, attempt, agentId, outcome, claimedAt, usage, now });
  }

  /**
   * Shared by fail and the reaper: back to pending with backoff, or failed for good (dependents
   * blocked). A reaped lease (`lost`: its token and the task's lost leases counting it) is not
   * counted as an attempt; the reap decision (src/store/lost-leases.ts) bounds the leases lost.
   */
  async settleFailure(tx: Tx, p: FailureToSettle): Promise<CountedFailure> {
    const errorJson = JSON.stringify(p.error);
    this.gates.failed(tx, p.persona, p.taskId, p.now);
    const lost = p.lost;
    // A reaped lease: the attempt uncounted, the lost lease counted, its token kept for a give-back.
    const lostSet = (token: string) => (lost === undefined ? "" : `, attempts = greatest(attempts - 1, 0), leases_lost = leases_lost + 1, reaped_token = ${token}`);
    const decision = failureDecision(p);
    if (decision.outcome === "retrying") {
      const runAt = decision.runAt;
      await tx.run(
        `UPDATE task_status SET status = 'pending', run_at = $2::bigint, ready_at = $2::bigint, last_error = $3,
           assigned_agent_id = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = $4::bigint${lostSet("$5, started_at = NULL")}
         WHERE task_id = $1`,
        lost === undefined ? [p.taskId, runAt, errorJson, p.now] : [p.taskId, runAt, errorJson, p.now, lost.leaseToken],
      );
      await parkForApproval(tx, [{ id: p.taskId }], p.now);
      await this.event(tx, p.taskId, "task:retrying", p.now, p.agentId, p.attempt, failureEventData(p, { runAt }));
      tx.emit("task:retrying", { taskId: p.taskId, persona: p.persona, attempt: p.attempt, runAt });
      return { ok: true, outcome: "retrying", attempt: p.attempt, runAt, code: p.error.code };
    }
    await tx.run(
      `UPDATE task_status SET status = 'failed', last_error = $2, finished_at = $3::bigint, lease_token = NULL, lease_expires_at = NULL, updated_at = $3::bigint${lostSet("$4")}
       WHERE task_id = $1`,
      lost === undefined ? [p.taskId, errorJson, p.now] : [p.taskId, errorJson, p.now, lost.leaseToken],
    );
    const blocked = await this.graph.blockDependents(tx, p.taskId, p.now);
    await this.event(tx, p.taskId, "task:failed", p.now, p.agentId, p.attempt, failureEventData(p, { blocked: blocked.length }));
    tx.emit("task:failed", { taskId: p.taskId, persona: p.persona, attempt: p.attempt, blocked: blocked.length });
    return { ok: true, outcome: "failed", attempt: p.attempt, blocked, code: p.error.code };
  }

  /** A reaped lease given back by its holder (src/store/lost-leases.ts): true when the task's lost leases went down by one. */
  async giveBack(tx: Tx, p: { taskId: number; leaseToken: string; agentId: string | null; now: number }): Promise<boolean> {
    const row = await tx.one<{ leases_lost: number }>(
      `UPDATE task_status SET leases_lost = leases_lost - 1, reaped_token = NULL, updated_at = $3::bigint
       WHERE task_id = $1 AND reaped_token = $2 AND leases_lost > 0 AND status NOT IN ('completed','failed','cancelled')
       RETURNING leases_lost`,
      [p.taskId, p.leaseToken, p.now],
    );
    if (row === undefined) return false;
    await this.event(tx, p.taskId, "lease:given-back", p.now, p.agentId, null, { leasesLost: row.leases_lost });
    return true;
  }

  async release(tx: Tx, params: ReleaseParams): Promise<SettlementResult> {
    const runAt = params.now + (params.delayMs ?? 0);
    const holder = await this.leasedRow(tx, params.taskId, params.leaseToken);
    if (holder === undefined) return this.lost(tx, params.taskId, "release");
    const row = await tx.one<{ persona_id: string; attempts: number }>(
      `UPDATE task_status SET status = 'pending', attempts = greatest(attempts - 1, 0), run_at = $3::bigint, ready_at = $3::bigint,
         last_error = coalesce($5::text, last_error),
         assigned_agent_id = NULL, lease_token = NULL, lease_expires_at = NULL, started_at = NULL, updated_at = $4::bigint
       WHERE ${LEASED} RETURNING persona_id, attempts`,
      [params.taskId, params.leaseToken, runAt, params.now, params.error === undefined ? null : JSON.stringify(params.error)],
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
    const leased = await this.lockLeased(tx, items);
    // One statement completes the rows and writes the task:completed events of those without
    // dependents (they ready nothing); the others' events wait for their counts below. It runs after
    // the lock above, so its snapshot sees every edge to these tasks (see has_dependents).
    type Row = { task_id: number; persona_id: string; attempts: number; assigned_agent_id: string | null; claimed_at: number | null; has_dependents: boolean };
    const rows: Row[] =
      leased.length === 0 ? [] : await tx.rows<Row>(PG_COMPLETE_MANY_SQL, [leased.map((i) => i.taskId), leased.map((i) => i.leaseToken), leased.map((i) => i.resultJson), now]);
    const readiedBy = new Map<number, number>();
    const ready: Readied[] = [];
    const withDependents = rows.filter((r) => r.has_dependents);
    if (withDependents.length > 0) {
      // Edges to a task are written under a FOR SHARE of it, which our lock above excludes: the ones
      // seen here are all there are, and a batch without dependents skips the counters' statements.
      await this.graph.decrementDependents(
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
   * The results of PG_COMPLETE_BATCH_SQL for `items` (in their order) with the notifications
   * completeMany would queue, or null when it fell back (nothing was written).
   */
  fromCompleteBatch(rows: CompleteBatchRow[], items: ReadonlyArray<{ taskId: number }>, emit: Tx["emit"]): CompleteResult[] | null {
    if (rows[0]?.fallback === true) return null;
    const byId = new Map(rows.map((r) => [r.task_id, r]));
    return items.map((item): CompleteResult => {
      const row = byId.get(item.taskId);
      if (row === undefined) {
        emit("lease:lost", { taskId: item.taskId, op: "complete" });
        return LOST;
      }
      emit("task:completed", { taskId: row.task_id, persona: row.persona_id, attempt: row.attempts, readied: 0, children: 0 });
      return { ok: true, outcome: "completed", attempt: row.attempts, childIds: [], childRefs: {} };
    });
  }

  private lost(tx: Tx, taskId: number, op: string): { ok: false; code: "LEASE_LOST" } {
    tx.emit("lease:lost", { taskId, op });
    return LOST;
  }
}
