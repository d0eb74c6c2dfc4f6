import { readyEvent } from "../events.js";
import {
  DEADLINE_APPROVE_NOTE,
  DEADLINE_BATCH_DEFAULT,
  DEADLINE_BY,
  DEADLINE_REJECT_REASON,
  PARKED_LIST_LIMIT_DEFAULT,
  approvalResult,
  attachInputs,
  gatedPlan,
  humanText,
  rejectionError,
  requireState,
  toRequest,
  type AnsweredInputRow,
  type ParkedStatusRow,
  type RequestRow,
} from "../humans.js";
import { taskNotFound } from "../rows.js";
import type { ClaimedTask, CompleteParams, HumanRequest, ParkResult, ParkedTask, TaskState } from "../types.js";
import type { Db, TransactionRunner } from "./database.js";
import type { GraphStatements } from "./graph.js";

/**
 * Tasks parked for a person (docs/ARCHITECTURE.md, "Task states"): approvals (a `human`
 * persona's task reaches `awaiting_approval` through the approval gate,
 * src/store/approval-gate.ts) and questions (an attempt parks in `awaiting_input`). Each
 * method runs inside the caller's transaction and writes its task_events row there.
 */
export class HumanStatements {
  private readonly statusRow;
  private readonly openRequest;
  private readonly requestsOf;
  private readonly closeRequest;
  private readonly approveStmt;
  private readonly rejectStmt;
  private readonly answerStmt;
  private readonly parkStmt;
  private readonly leasedHolder;
  private readonly insertRequest;
  private readonly insertEvent;
  private readonly parkedList;
  private readonly dueDeadlines;
  private readonly answeredInputs;
  private readonly planApprovalOf;

  constructor(
    db: Db,
    private readonly tx: TransactionRunner,
    private readonly graph: GraphStatements,
  ) {
    this.statusRow = db.prepare("SELECT status, persona_id, attempts FROM task_status WHERE task_id = ?");
    this.openRequest = db.prepare("SELECT * FROM human_requests WHERE task_id = ? AND outcome IS NULL ORDER BY id DESC LIMIT 1");
    this.requestsOf = db.prepare("SELECT * FROM human_requests WHERE task_id = ? ORDER BY id");
    this.closeRequest = db.prepare(
      "UPDATE human_requests SET outcome = @outcome, answer = @answer, answered_by = @by, answered_at = @now WHERE id = @id AND outcome IS NULL",
    );
    this.approveStmt = db.prepare(`
      UPDATE task_status SET status = 'completed', result = @result, progress = 1, finished_at = @now, updated_at = @now
      WHERE task_id = @taskId AND status = 'awaiting_approval'`);
    this.rejectStmt = db.prepare(`
      UPDATE task_status SET status = 'failed', last_error = @error, finished_at = @now, updated_at = @now
      WHERE task_id = @taskId AND status = 'awaiting_approval'`);
    this.answerStmt = db.prepare(`
      UPDATE task_status SET status = 'pending', run_at = @now, ready_at = @now, updated_at = @now
      WHERE task_id = @taskId AND status = 'awaiting_input'`);
    // Like a release: the attempt is given back uncounted, and the lease is gone.
    this.parkStmt = db.prepare(`
      UPDATE task_status SET status = 'awaiting_input', attempts = max(attempts - 1, 0), assigned_agent_id = NULL,
        lease_token = NULL, lease_expires_at = NULL, started_at = NULL, progress = NULL, progress_message = NULL, updated_at = @now
      WHERE task_id = @taskId AND lease_token = @leaseToken AND status IN ('claimed','in_progress')`);
    this.leasedHolder = db.prepare(`
      SELECT persona_id, attempts, assigned_agent_id FROM task_status
      WHERE task_id = @taskId AND lease_token = @leaseToken AND status IN ('claimed','in_progress')`);
    this.insertRequest = db.prepare(`
      INSERT INTO human_requests (task_id, kind, question, asked_by, attempt, asked_at)
      VALUES (@taskId, 'input', @question, @by, @attempt, @now)`);
    this.insertEvent = db.prepare(
      "INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES (@taskId, @type, @now, @agentId, @attempt, @data)",
    );
    this.parkedList = db.prepare(`
      SELECT s.task_id, t.title, s.persona_id, s.status,
             (SELECT r.id FROM human_requests r WHERE r.task_id = s.task_id AND r.outcome IS NULL ORDER BY r.id DESC LIMIT 1) AS request_id
      FROM task_status s INDEXED BY task_status_parked JOIN tasks t ON t.id = s.task_id
      WHERE s.status IN ('awaiting_approval','awaiting_input')
      ORDER BY s.task_id LIMIT @limit`);
    this.dueDeadlines = db.prepare(`
      SELECT r.id, r.task_id, r.default_outcome FROM human_requests r INDEXED BY human_requests_deadline
      JOIN task_status s ON s.task_id = r.task_id
      WHERE r.outcome IS NULL AND r.deadline_at IS NOT NULL AND r.deadline_at <= @now
        AND r.kind = 'approval' AND r.default_outcome IS NOT NULL AND s.status = 'awaiting_approval'
      ORDER BY r.deadline_at LIMIT @limit`);
    this.planApprovalOf = db
      .prepare("SELECT p.config ->> '$.planApproval' FROM task_status s JOIN personas p ON p.id = s.persona_id WHERE s.task_id = ?")
      .pluck();
    this.answeredInputs = db.prepare(`
      SELECT task_id, question, answer, attempt, asked_at, answered_at, answered_by FROM human_requests
      WHERE task_id IN (SELECT value FROM json_each(?)) AND kind = 'input' AND outcome = 'answered'
      ORDER BY task_id, id`);
  }

  private event(taskId: number, type: string, now: number, agentId: string | null, attempt: number | null, data: unknown): void {
    this.insertEvent.run({ taskId, type, now, agentId, attempt, data: JSON.stringify(data) });
  }

  private require(taskId: number, expected: TaskState, verb: string): ParkedStatusRow {
    const row = this.statusRow.get(taskId) as ParkedStatusRow | undefined;
    if (row === undefined) throw taskNotFound(taskId);
    return requireState(taskId, row, expected, verb);
  }

  approve(p: { taskId: number; note?: string | undefined; by?: string | undefined; now: number }): { readied: number[] } {
    const note = humanText(p.note, "note", false);
    const row = this.require(p.taskId, "awaiting_approval", "approved");
    const by = p.by ?? null;
    const request = this.openRequest.get(p.taskId) as RequestRow | undefined;
    if (request !== undefined) this.closeRequest.run({ id: request.id, outcome: "approved", answer: note, by, now: p.now });
    this.approveStmt.run({ taskId: p.taskId, result: approvalResult(note, by), now: p.now });
    const readied = this.graph.completeDependencies(p.taskId, p.now);
    this.event(p.taskId, "approval:approved", p.now, by, row.attempts, { note, readied: readied.length, requestId: request?.id ?? null });
    this.tx.emit("task:completed", { taskId: p.taskId, persona: row.persona_id, attempt: row.attempts, readied: readied.length, children: 0 });
    if (readied.length > 0) this.tx.emit("task:ready", readyEvent(readied));
    return { readied: readied.map((r) => r.id) };
  }

  reject(p: { taskId: number; reason: string; by?: string | undefined; now: number }): { blocked: number[] } {
    const reason = humanText(p.reason, "reason", true)!;
    const row = this.require(p.taskId, "awaiting_approval", "rejected");
    const by = p.by ?? null;
    const request = this.openRequest.get(p.taskId) as RequestRow | undefined;
    if (request !== undefined) this.closeRequest.run({ id: request.id, outcome: "rejected", answer: reason, by, now: p.now });
    this.rejectStmt.run({ taskId: p.taskId, error: rejectionError(reason, by), now: p.now });
    const blocked = this.graph.blockDependents(p.taskId, p.now);
    this.event(p.taskId, "approval:rejected", p.now, by, row.attempts, { reason, blocked: blocked.length, requestId: request?.id ?? null });
    this.tx.emit("task:failed", { taskId: p.taskId, persona: row.persona_id, attempt: row.attempts, blocked: blocked.length });
    return { blocked };
  }

  answer(p: { taskId: number; answer: string; by?: string | undefined; now: number }): { status: TaskState } {
    const answer = humanText(p.answer, "answer", true)!;
    const row = this.require(p.taskId, "awaiting_input", "answered");
    const by = p.by ?? null;
    const request = this.openRequest.get(p.taskId) as RequestRow | undefined;
    if (request !== undefined) this.closeRequest.run({ id: request.id, outcome: "answered", answer, by, now: p.now });
    this.answerStmt.run({ taskId: p.taskId, now: p.now });
    this.graph.approvals.park([{ id: p.taskId, persona: row.persona_id }], p.now);
    this.event(p.taskId, "input:answered", p.now, by, row.attempts, { answer, requestId: request?.id ?? null });
    this.tx.emit("task:ready", { ids: [p.taskId], personas: [row.persona_id] });
    return { status: "pending" };
  }

  /** Parks a leased attempt on a question; LEASE_LOST when the lease is not current. */
  ask(p: { taskId: number; leaseToken: string; question: string; now: number }): ParkResult | { ok: false; code: "LEASE_LOST" } {
    const question = humanText(p.question, "question", true)!;
    const holder = this.leasedHolder.get({ taskId: p.taskId, leaseToken: p.leaseToken }) as
      | { persona_id: string; attempts: number; assigned_agent_id: string | null }
      | undefined;
    if (holder === undefined) {
      this.tx.emit("lease:lost", { taskId: p.taskId, op: "ask" });
      return { ok: false, code: "LEASE_LOST" };
    }
    this.parkStmt.run({ taskId: p.taskId, leaseToken: p.leaseToken, now: p.now });
    const request = this.insertRequest.run({ taskId: p.taskId, question, by: holder.assigned_agent_id, attempt: holder.attempts, now: p.now });
    this.event(p.taskId, "input:requested", p.now, holder.assigned_agent_id, holder.attempts, { question, requestId: Number(request.lastInsertRowid) });
    this.tx.emit("task:released", { taskId: p.taskId, persona: holder.persona_id });
    return { ok: true, outcome: "parked", attempt: holder.attempts };
  }

  listParked(limit = PARKED_LIST_LIMIT_DEFAULT): ParkedTask[] {
    const rows = this.parkedList.all({ limit: limit === 0 ? -1 : limit }) as Array<{
      task_id: number;
      title: string;
      persona_id: string;
      status: "awaiting_approval" | "awaiting_input";
      request_id: number | null;
    }>;
    return rows.map((row) => {
      const request = row.request_id === null ? undefined : (this.openRequest.get(row.task_id) as RequestRow | undefined);
      return { id: row.task_id, title: row.title, persona: row.persona_id, status: row.status, request: request === undefined ? null : toRequest(request) };
    });
  }

  requests(taskId: number): HumanRequest[] {
    if (this.statusRow.get(taskId) === undefined) throw taskNotFound(taskId);
    return (this.requestsOf.all(taskId) as RequestRow[]).map(toRequest);
  }

  /** The open request of a task, or null (roster why). */
  open(taskId: number): HumanRequest | null {
    const row = this.openRequest.get(taskId) as RequestRow | undefined;
    return row === undefined ? null : toRequest(row);
  }

  /** Whether some approval's deadline with a default has passed (a read, so an idle tick writes nothing). */
  hasDueDeadlines(now: number): boolean {
    return this.dueDeadlines.get({ now, limit: 1 }) !== undefined;
  }

  applyDeadlines(p: { now: number; limit?: number | undefined }): Array<{ taskId: number; outcome: "approved" | "rejected" }> {
    const rows = this.dueDeadlines.all({ now: p.now, limit: p.limit ?? DEADLINE_BATCH_DEFAULT }) as Array<{
      id: number;
      task_id: number;
      default_outcome: "approve" | "reject" | null;
    }>;
    const out: Array<{ taskId: number; outcome: "approved" | "rejected" }> = [];
    for (const row of rows) {
      // No default given: the deadline passes without a decision, and a person still decides.
      if (row.default_outcome === "approve") {
        this.approve({ taskId: row.task_id, note: DEADLINE_APPROVE_NOTE, by: DEADLINE_BY, now: p.now });
        out.push({ taskId: row.task_id, outcome: "approved" });
      } else if (row.default_outcome === "reject") {
        this.reject({ taskId: row.task_id, reason: DEADLINE_REJECT_REASON, by: DEADLINE_BY, now: p.now });
        out.push({ taskId: row.task_id, outcome: "rejected" });
      }
    }
    return out;
  }

  /** Attaches to claimed tasks the questions their earlier attempts asked, with the answers. */
  withInputs(claimed: ClaimedTask[]): ClaimedTask[] {
    if (claimed.length === 0) return claimed;
    return attachInputs(claimed, this.answeredInputs.all(JSON.stringify(claimed.map((t) => t.id))) as AnsweredInputRow[]);
  }

  /**
   * A planner whose persona has `planApproval: <human persona>` does not fan out
   * unseen: its children are enqueued behind one approval task of that persona
   * whose description is the plan in full. Other completions pass unchanged.
   */
  gatePlan<P extends CompleteParams>(params: P): P {
    if (params.children === undefined || params.children.length === 0) return params;
    return gatedPlan(params, this.planApprovalOf.get(params.taskId) as string | null | undefined);
  }
}
