import { readyEvent } from "../events.js";
import { RosterError } from "../../errors.js";
import { TaskCommands } from "./task-commands.js";
import { storedError } from "../stored-error.js";
import { completionJson, validateBatch } from "../input.js";
import { resultCarrier } from "../usage-values.js";
import { failureDecision, failureEventData, failureToSettle } from "../settle.js";
import type {
  CompleteParams,
  CompleteResult,
  FailParams,
  FailResult,
  CountedFailure,
  FailureToSettle,
  LeaseResult,
  ReleaseParams,
  SettlementResult,
} from "../types.js";
import type { Db, TransactionRunner } from "./database.js";
import { EventRows } from "./event-rows.js";
import { Completions } from "./completions.js";
import { TaskCounts } from "./task-counts.js";
import type { Enqueuer } from "./enqueue.js";
import type { GraphStatements } from "./graph.js";
import { personaFault, providerLimit } from "../gates.js";
import { EconomicsStatements } from "./budgets.js";
import { SpendRecorder } from "./spend.js";
import { usageOfSettlement, type NormalUsage } from "../usage-values.js";
import { UsageStatements, type RecordParams } from "./usage.js";

const LOST: { ok: false; code: "LEASE_LOST" } = Object.freeze({ ok: false, code: "LEASE_LOST" });

/**
 * The fenced state machine of a task after its claim (src/store/sqlite/claims.ts; docs/ARCHITECTURE.md rules 3, 4, 6, 7, 8, 9). Every method
 * runs inside a transaction the caller opened, writes its task_events rows there,
 * and queues its in-process notification for after the commit.
 */
export class Transitions {
  /** Usage per attempt and spend totals (docs/ARCHITECTURE.md rule 15). */
  readonly usage: UsageStatements;
  /** The claim's economic gates: budgets, provider pauses, breakers, rate limits. */
  readonly gates: EconomicsStatements;
  /** Cancel, retry by hand, add a dependency (src/store/sqlite/task-commands.ts). */
  readonly commands: TaskCommands;
  /** What settled attempts spent, and the holds a spent budget puts (./spend.ts). */
  private readonly spent: SpendRecorder;
  private readonly insertEvent;
  private readonly startStmt;
  private readonly progressStmt;
  private readonly counts: TaskCounts;
  /** The fenced completion statements (./completions.ts). */
  private readonly completions: Completions;
  private readonly insertCompletedEvents;
  private readonly insertCompletedEvent;
  private readonly leasedRow;
  private readonly retryStmt;
  private readonly failStmt;
  private readonly retryLostStmt;
  private readonly failLostStmt;
  private readonly giveBackStmt;
  private readonly releaseStmt;

  constructor(
    db: Db,
    private readonly tx: TransactionRunner,
    private readonly graph: GraphStatements,
    private readonly enqueuer: Enqueuer,
    private readonly maxPayloadBytes: number,
  ) {
    this.usage = new UsageStatements(db);
    this.gates = new EconomicsStatements(db, tx);
    this.spent = new SpendRecorder(this.usage, this.gates, tx);
    this.commands = new TaskCommands(db, tx, graph, this);
    this.insertEvent = db.prepare(
      "INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES (@taskId, @type, @now, @agentId, @attempt, @data)",
    );
    // A lease is current until it is reaped or settled: fencing is by token alone, never by
    // comparing lease_expires_at with this process's clock (docs/ARCHITECTURE.md, "Liveness").
    const leased = "task_id = @taskId AND lease_token = @leaseToken AND status IN ('claimed','in_progress')";
    this.startStmt = db.prepare(`
      UPDATE task_status SET status = 'in_progress', started_at = coalesce(started_at, @now), updated_at = @now
      WHERE ${leased} RETURNING attempts, assigned_agent_id`);
    this.progressStmt = db.prepare(`
      UPDATE task_status SET progress = @fraction, progress_message = @message, updated_at = @now
      WHERE ${leased} RETURNING attempts, assigned_agent_id`);
    // Rows read raw and made objects in JS (row-objects.ts).
    this.counts = new TaskCounts(db);
    this.completions = new Completions(db, this.counts);
    // One row per completed task, positional VALUES (event-rows.ts).
    this.insertCompletedEvents = new EventRows(db);
    // The same for one completion: one VALUES row (about 3 us less than a JSON array of one), the same event text.
    this.insertCompletedEvent = db.prepare(`
      INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
      VALUES (@id, 'task:completed', @now, @agentId, @attempt, json_object('readied', CAST(@readied AS INTEGER)))`);
    this.leasedRow = db.prepare(`
      SELECT s.persona_id, s.attempts, s.max_attempts, s.assigned_agent_id, t.retry_policy, s.claimed_at
      FROM task_status s JOIN tasks t ON t.id = s.task_id
      WHERE s.task_id = @taskId AND s.lease_token = @leaseToken AND s.status IN ('claimed','in_progress')`);
    this.retryStmt = db.prepare(`
      UPDATE task_status SET status = 'pending', run_at = @runAt, ready_at = @runAt, last_error = @error,
        assigned_agent_id = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = @now
      WHERE task_id = @taskId`);
    this.failStmt = db.prepare(`
      UPDATE task_status SET status = 'failed', last_error = @error, finished_at = @now,
        lease_token = NULL, lease_expires_at = NULL, updated_at = @now
      WHERE task_id = @taskId`);
    // A reaped lease (lost-leases.ts): the attempt uncounted, the lost lease counted, its token kept for a give-back.
    this.retryLostStmt = db.prepare(`
      UPDATE task_status SET status = 'pending', attempts = max(attempts - 1, 0), leases_lost = leases_lost + 1, reaped_token = @leaseToken,
        run_at = @runAt, ready_at = @runAt, last_error = @error,
        assigned_agent_id = NULL, lease_token = NULL, lease_expires_at = NULL, started_at = NULL, updated_at = @now
      WHERE task_id = @taskId`);
    this.failLostStmt = db.prepare(`
      UPDATE task_status SET status = 'failed', attempts = max(attempts - 1, 0), leases_lost = leases_lost + 1, reaped_token = @leaseToken,
        last_error = @error, finished_at = @now, lease_token = NULL, lease_expires_at = NULL, updated_at = @now
      WHERE task_id = @taskId`);
    // The holder of a reaped lease came back: the lost lease was not the task's (lost-leases.ts).
    this.giveBackStmt = db.prepare(`
      UPDATE task_status SET leases_lost = leases_lost - 1, reaped_token = NULL, updated_at = @now
      WHERE task_id = @taskId AND reaped_token = @leaseToken AND leases_lost > 0 AND status NOT IN ('completed','failed','cancelled')
      RETURNING leases_lost`);
    this.releaseStmt = db.prepare(`
      UPDATE task_status SET status = 'pending', attempts = max(attempts - 1, 0), run_at = @runAt, ready_at = @runAt,
        last_error = coalesce(@error, last_error), assigned_agent_id = NULL, lease_token = NULL, lease_expires_at = NULL, started_at = NULL, updated_at = @now
      WHERE ${leased} RETURNING persona_id, attempts`);
  }

  event(taskId: number | null, type: string, now: number, agentId: string | null, attempt: number | null, data?: unknown): void {
    this.insertEvent.run({ taskId, type, now, agentId, attempt, data: data === undefined ? null : JSON.stringify(data) });
  }

  start(params: { taskId: number; leaseToken: string; now: number }): LeaseResult {
    const row = this.startStmt.get(params) as { attempts: number; assigned_agent_id: string | null } | undefined;
    if (row === undefined) return this.lost(params.taskId, "start");
    this.event(params.taskId, "task:started", params.now, row.assigned_agent_id, row.attempts);
    this.tx.emit("task:started", { taskId: params.taskId });
    return { ok: true };
  }

  progress(params: { taskId: number; leaseToken: string; fraction: number; message?: string | undefined; now: number }): LeaseResult {
    if (!Number.isFinite(params.fraction) || params.fraction < 0 || params.fraction > 1) {
      throw new RosterError("VALIDATION", `fraction: must be a number from 0 to 1, got ${String(params.fraction)}`, { details: { field: "fraction" } });
    }
    const message = params.message === undefined ? null : String(params.message).slice(0, 1000);
    const row = this.progressStmt.get({ ...params, message }) as { attempts: number; assigned_agent_id: string | null } | undefined;
    if (row === undefined) return this.lost(params.taskId, "progress");
    this.event(params.taskId, "task:progress", params.now, row.assigned_agent_id, row.attempts, { fraction: params.fraction, message });
    this.tx.emit("task:progress", { taskId: params.taskId, fraction: params.fraction, message });
    return { ok: true };
  }

  /** Validates result and children before any write, so a bad output changes nothing. */
  complete(params: CompleteParams): CompleteResult {
    const result = completionJson(params, this.maxPayloadBytes);
    const children = params.children === undefined || params.children.length === 0 ? null : validateBatch(params.children, this.maxPayloadBytes);
    const usage = usageOfSettlement(params.usage, resultCarrier(params));
    const row = this.completions.rows([{ taskId: params.taskId, leaseToken: params.leaseToken, resultJson: result }], params.now)[0];
    if (row === undefined) return this.lost(params.taskId, "complete");
    this.spent.one(params.taskId, row.attempts, row.assigned_agent_id, row.claimed_at, "completed", usage, params.now);
    this.gates.attemptSucceeded(row.persona_id, params.now);
    const ready = this.graph.completeDependencies(params.taskId, params.now);
    let childIds: number[] = [];
    let childRefs: Record<string, number> = {};
    if (children !== null) {
      const written = this.enqueuer.write(children, { parentId: params.taskId, createdBy: row.assigned_agent_id, now: params.now });
      childIds = written.ids;
      childRefs = written.refs;
      this.tx.emit("task:enqueued", {
        ids: written.created,
        personas: written.personas,
        ready: written.statuses.filter((s) => s === "pending").length,
      });
    }
    this.event(params.taskId, "task:completed", params.now, row.assigned_agent_id, row.attempts, {
      readied: ready.length,
      ...(childIds.length > 0 ? { children: childIds } : {}),
    });
    this.tx.emit("task:completed", { taskId: params.taskId, persona: row.persona_id, attempt: row.attempts, readied: ready.length, children: childIds.length });
    if (ready.length > 0) this.tx.emit("task:ready", readyEvent(ready));
    return { ok: true, outcome: "completed", attempt: row.attempts, childIds, childRefs };
  }

  /**
   * complete() for many tasks without children, in a handful of set-based statements
   * instead of several per task (the completer's hot path): the same rows, events
   * and notifications, each task fenced by its own lease. `resultJson` must already
   * be validated (completionJson). A dependent readied by several of these tasks
   * records the highest of their ids as `after`. Results in input order.
   */
  completeMany(items: ReadonlyArray<{ taskId: number; leaseToken: string; resultJson: string | null; usage?: NormalUsage | null }>, now: number): CompleteResult[] {
    const rows = this.completions.rows(items, now);
    // Only tasks something depends on can ready anything: most batches skip the counters' statements.
    const withDependents = rows.filter((r) => r.has_dependents === 1).map((r) => r.task_id);
    const { ready, readiedBy } = withDependents.length === 0 ? { ready: [], readiedBy: new Map<number, number>() } : this.graph.completeDependenciesMany(withDependents, now);
    if (rows.length === 1) {
      const r = rows[0]!;
      this.insertCompletedEvent.run({ id: r.task_id, now, agentId: r.assigned_agent_id, attempt: r.attempts, readied: readiedBy.get(r.task_id) ?? 0 });
    } else if (rows.length > 1) {
      this.insertCompletedEvents.insert(
        rows.map((r) => [r.task_id, "task:completed", now, r.assigned_agent_id, r.attempts, `{"readied":${readiedBy.get(r.task_id) ?? 0}}`] as const),
      );
    }
    const done = new Map(rows.map((r) => [r.task_id, r]));
    // Usage with each completion, recorded for the whole batch at once, and every persona's breaker closed (one primary-key read per persona).
    const spent: RecordParams[] = [];
    for (const item of items) {
      const row = item.usage == null ? undefined : done.get(item.taskId);
      if (row !== undefined) spent.push({ taskId: row.task_id, attempt: row.attempts, agentId: row.assigned_agent_id, outcome: "completed", claimedAt: row.claimed_at, usage: item.usage!, now });
    }
    this.spent.many(spent);
    for (const persona of new Set(rows.map((r) => r.persona_id))) this.gates.attemptSucceeded(persona, now, rows.filter((r) => r.persona_id === persona).length);
    const results = items.map((item): CompleteResult => {
      const row = done.get(item.taskId);
      if (row === undefined) return this.lost(item.taskId, "complete");
      const count = readiedBy.get(row.task_id) ?? 0;
      this.tx.emit("task:completed", { taskId: row.task_id, persona: row.persona_id, attempt: row.attempts, readied: count, children: 0 });
      return { ok: true, outcome: "completed", attempt: row.attempts, childIds: [], childRefs: {} };
    });
    if (ready.length > 0) this.tx.emit("task:ready", readyEvent(ready));
    return results;
  }

  fail(params: FailParams): FailResult {
    const row = this.leasedRow.get({ taskId: params.taskId, leaseToken: params.leaseToken, now: params.now }) as
      | { persona_id: string; attempts: number; max_attempts: number; assigned_agent_id: string | null; retry_policy: string }
      | undefined;
    if (row === undefined) return this.lost(params.taskId, "fail");
    const error = storedError(params.error, (params.error as { retryable?: boolean }).retryable ?? true);
    const usage = usageOfSettlement(params.usage, error.details);
    const claimedAt = (row as { claimed_at?: number | null }).claimed_at ?? null;
    // A provider's rate or usage limit is nobody's fault: the attempt is given back
    // uncounted and every persona on that account pauses (docs/economics.md).
    const failure = providerLimit(error);
    if (failure !== null) {
      const until = this.gates.pauseProvider({ persona: row.persona_id, taskId: params.taskId, ...failure, now: params.now });
      const runAt = until ?? params.now;
      this.spent.one(params.taskId, row.attempts, row.assigned_agent_id, claimedAt, "released", usage, params.now);
      this.release({ taskId: params.taskId, leaseToken: params.leaseToken, reason: `${failure.failure}: ${error.message.slice(0, 200)}`, delayMs: runAt - params.now, error, now: params.now });
      return { ok: true, outcome: "released", attempt: row.attempts, runAt };
    }
    // The persona's own fault (its CLI not found): not the task's; given back uncounted, the persona held (gates.ts, personaFault).
    if (personaFault(error)) {
      this.gates.attemptFailed(row.persona_id, params.taskId, params.now, true);
      this.spent.one(params.taskId, row.attempts, row.assigned_agent_id, claimedAt, "released", usage, params.now);
      this.release({ taskId: params.taskId, leaseToken: params.leaseToken, reason: `persona: ${error.message.slice(0, 300)}`, error, now: params.now });
      return { ok: true, outcome: "released", attempt: row.attempts, runAt: params.now };
    }
    // Aborted by the supervisor for its budget (src/supervisor/budget-watch.ts): its usage is recorded (which
    // holds the task or goal once spent) and the attempt given back uncounted; with no budget at all it is an
    // ordinary failure, so an adapter cannot loop by raising the code itself (docs/economics.md).
    if (error.code === "BUDGET_EXHAUSTED" && this.gates.budgeted(params.taskId)) {
      this.spent.one(params.taskId, row.attempts, row.assigned_agent_id, claimedAt, "budget_exhausted", usage, params.now);
      this.release({ taskId: params.taskId, leaseToken: params.leaseToken, reason: `BUDGET_EXHAUSTED: ${error.message.slice(0, 200)}`, error, now: params.now });
      return { ok: true, outcome: "released", attempt: row.attempts, runAt: params.now };
    }
    const settled = this.settleFailure(failureToSettle(params.taskId, row, error, params));
    if (settled.ok) this.spent.one(params.taskId, row.attempts, row.assigned_agent_id, claimedAt, settled.outcome, usage, params.now);
    return settled;
  }

  /**
   * Shared by fail and the reaper: back to pending with backoff, or failed for good. A reaped
   * lease (`lost`: its token and the task's lost leases counting it) is not counted as an
   * attempt; the reap decision (lost-leases.ts) bounds the leases lost instead.
   */
  settleFailure(p: FailureToSettle): CountedFailure {
    const errorJson = JSON.stringify(p.error);
    this.gates.attemptFailed(p.persona, p.taskId, p.now);
    const lost = p.lost;
    const decision = failureDecision(p);
    if (decision.outcome === "retrying") {
      const runAt = decision.runAt;
      if (lost === undefined) this.retryStmt.run({ taskId: p.taskId, runAt, error: errorJson, now: p.now });
      else this.retryLostStmt.run({ taskId: p.taskId, runAt, error: errorJson, now: p.now, leaseToken: lost.leaseToken });
      this.graph.approvals.park([{ id: p.taskId, persona: p.persona }], p.now);
      this.event(p.taskId, "task:retrying", p.now, p.agentId, p.attempt, failureEventData(p, { runAt }));
      this.tx.emit("task:retrying", { taskId: p.taskId, persona: p.persona, attempt: p.attempt, runAt });
      return { ok: true, outcome: "retrying", attempt: p.attempt, runAt, code: p.error.code };
    }
    if (lost === undefined) this.failStmt.run({ taskId: p.taskId, error: errorJson, now: p.now });
    else this.failLostStmt.run({ taskId: p.taskId, error: errorJson, now: p.now, leaseToken: lost.leaseToken });
    const blocked = this.graph.blockDependents(p.taskId, p.now);
    this.event(p.taskId, "task:failed", p.now, p.agentId, p.attempt, failureEventData(p, { blocked: blocked.length }));
    this.tx.emit("task:failed", { taskId: p.taskId, persona: p.persona, attempt: p.attempt, blocked: blocked.length });
    return { ok: true, outcome: "failed", attempt: p.attempt, blocked, code: p.error.code };
  }

  /** A reaped lease given back by its holder (lost-leases.ts): true when the task's lost leases went down by one. */
  giveBack(p: { taskId: number; leaseToken: string; agentId: string | null; now: number }): boolean {
    const row = this.giveBackStmt.get({ taskId: p.taskId, leaseToken: p.leaseToken, now: p.now }) as { leases_lost: number } | undefined;
    if (row === undefined) return false;
    this.event(p.taskId, "lease:given-back", p.now, p.agentId, null, { leasesLost: row.leases_lost });
    return true;
  }

  release(params: ReleaseParams): SettlementResult {
    const runAt = params.now + (params.delayMs ?? 0);
    // RETURNING sees the new row, where the agent is already cleared: read the holder first.
    const holder = this.leasedRow.get({ taskId: params.taskId, leaseToken: params.leaseToken, now: params.now }) as
      | { assigned_agent_id: string | null }
      | undefined;
    if (holder === undefined) return this.lost(params.taskId, "release");
    const row = this.releaseStmt.get({ taskId: params.taskId, leaseToken: params.leaseToken, now: params.now, runAt, error: params.error === undefined ? null : JSON.stringify(params.error) }) as
      | { persona_id: string; attempts: number }
      | undefined;
    if (row === undefined) return this.lost(params.taskId, "release");
    this.graph.approvals.park([{ id: params.taskId, persona: row.persona_id }], params.now);
    if (params.usage !== undefined) {
      const claimedAt = (holder as { claimed_at?: number | null }).claimed_at ?? null;
      this.spent.one(params.taskId, row.attempts + 1, holder.assigned_agent_id, claimedAt, "released", usageOfSettlement(params.usage, null), params.now);
    }
    this.event(params.taskId, "task:released", params.now, holder.assigned_agent_id, row.attempts + 1, { reason: params.reason ?? null, runAt });
    this.tx.emit("task:released", { taskId: params.taskId, persona: row.persona_id });
    return { ok: true, outcome: "released", attempt: row.attempts + 1, runAt };
  }

  private lost(taskId: number, op: string): { ok: false; code: "LEASE_LOST" } {
    this.tx.emit("lease:lost", { taskId, op });
    return LOST;
  }
}
