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
import { parkForApproval } from "./approvals.js";
import { taskNotFound } from "../rows.js";
import type { ClaimedTask, CompleteParams, HumanRequest, ParkResult, ParkedTask, TaskState } from "../types.js";
import type { Tx } from "./database.js";
import type { PgTransitions } from "./transitions.js";

type Q = Pick<Tx, "rows" | "one">;

const OPEN_REQUEST = "SELECT * FROM human_requests WHERE task_id = $1 AND outcome IS NULL ORDER BY id DESC LIMIT 1";

/**
 * Tasks parked for a person on PostgreSQL, as src/store/sqlite/humans.ts: approvals (a
 * `human` persona's task reaches awaiting_approval through the approval gate,
 * src/store/approval-gate.ts) and questions (an attempt parks in
 * awaiting_input). Each method runs in the caller's transaction.
 */
export class PgHumans {
  constructor(private readonly transitions: PgTransitions) {}

  private async require(tx: Tx, taskId: number, expected: TaskState, verb: string): Promise<ParkedStatusRow> {
    const row = await tx.one<ParkedStatusRow>("SELECT status, persona_id, attempts FROM task_status WHERE task_id = $1 FOR UPDATE", [taskId]);
    if (row === undefined) throw taskNotFound(taskId);
    return requireState(taskId, row, expected, verb);
  }

  private async close(tx: Tx, taskId: number, outcome: string, answer: string | null, by: string | null, now: number): Promise<RequestRow | undefined> {
    const request = await tx.one<RequestRow>(OPEN_REQUEST, [taskId]);
    if (request !== undefined) {
      await tx.run("UPDATE human_requests SET outcome = $2, answer = $3, answered_by = $4, answered_at = $5 WHERE id = $1 AND outcome IS NULL", [request.id, outcome, answer, by, now]);
    }
    return request;
  }

  async approve(tx: Tx, p: { taskId: number; note?: string | undefined; by?: string | undefined; now: number }): Promise<{ readied: number[] }> {
    const note = humanText(p.note, "note", false);
    const row = await this.require(tx, p.taskId, "awaiting_approval", "approved");
    const by = p.by ?? null;
    const request = await this.close(tx, p.taskId, "approved", note, by, p.now);
    await tx.run(
      "UPDATE task_status SET status = 'completed', result = $2, progress = 1, finished_at = $3, updated_at = $3 WHERE task_id = $1 AND status = 'awaiting_approval'",
      [p.taskId, approvalResult(note, by), p.now],
    );
    const readied = await this.transitions.graph.completeDependencies(tx, p.taskId, p.now);
    await this.transitions.event(tx, p.taskId, "approval:approved", p.now, by, row.attempts, { note, readied: readied.length, requestId: request?.id ?? null });
    tx.emit("task:completed", { taskId: p.taskId, persona: row.persona_id, attempt: row.attempts, readied: readied.length, children: 0 });
    if (readied.length > 0) tx.emit("task:ready", readyEvent(readied));
    return { readied: readied.map((r) => r.id) };
  }

  async reject(tx: Tx, p: { taskId: number; reason: string; by?: string | undefined; now: number }): Promise<{ blocked: number[] }> {
    const reason = humanText(p.reason, "reason", true)!;
    const row = await this.require(tx, p.taskId, "awaiting_approval", "rejected");
    const by = p.by ?? null;
    const request = await this.close(tx, p.taskId, "rejected", reason, by, p.now);
    await tx.run(
      "UPDATE task_status SET status = 'failed', last_error = $2, finished_at = $3, updated_at = $3 WHERE task_id = $1 AND status = 'awaiting_approval'",
      [p.taskId, rejectionError(reason, by), p.now],
    );
    const blocked = await this.transitions.graph.blockDependents(tx, p.taskId, p.now);
    await this.transitions.event(tx, p.taskId, "approval:rejected", p.now, by, row.attempts, { reason, blocked: blocked.length, requestId: request?.id ?? null });
    tx.emit("task:failed", { taskId: p.taskId, persona: row.persona_id, attempt: row.attempts, blocked: blocked.length });
    return { blocked };
  }

  async answer(tx: Tx, p: { taskId: number; answer: string; by?: string | undefined; now: number }): Promise<{ status: TaskState }> {
    const answer = humanText(p.answer, "answer", true)!;
    const row = await this.require(tx, p.taskId, "awaiting_input", "answered");
    const by = p.by ?? null;
    const request = await this.close(tx, p.taskId, "answered", answer, by, p.now);
    await tx.run("UPDATE task_status SET status = 'pending', run_at = $2, ready_at = $2, updated_at = $2 WHERE task_id = $1 AND status = 'awaiting_input'", [p.taskId, p.now]);
    await parkForApproval(tx, [{ id: p.taskId }], p.now);
    await this.transitions.event(tx, p.taskId, "input:answered", p.now, by, row.attempts, { answer, requestId: request?.id ?? null });
    tx.emit("task:ready", { ids: [p.taskId], personas: [row.persona_id] });
    return { status: "pending" };
  }

  /** Parks a leased attempt on a question (like a release: uncounted, lease gone); LEASE_LOST when the lease is not current. */
  async ask(tx: Tx, p: { taskId: number; leaseToken: string; question: string; now: number }): Promise<ParkResult | { ok: false; code: "LEASE_LOST" }> {
    const question = humanText(p.question, "question", true)!;
    const holder = await tx.one<{ persona_id: string; attempts: number; assigned_agent_id: string | null }>(
      "SELECT persona_id, attempts, assigned_agent_id FROM task_status WHERE task_id = $1 AND lease_token = $2 AND status IN ('claimed','in_progress') FOR UPDATE",
      [p.taskId, p.leaseToken],
    );
    if (holder === undefined) {
      tx.emit("lease:lost", { taskId: p.taskId, op: "ask" });
      return { ok: false, code: "LEASE_LOST" };
    }
    await tx.run(
      `UPDATE task_status SET status = 'awaiting_input', attempts = greatest(attempts - 1, 0), assigned_agent_id = NULL,
         lease_token = NULL, lease_expires_at = NULL, started_at = NULL, progress = NULL, progress_message = NULL, updated_at = $3
       WHERE task_id = $1 AND lease_token = $2 AND status IN ('claimed','in_progress')`,
      [p.taskId, p.leaseToken, p.now],
    );
    const request = await tx.one<{ id: number }>(
      "INSERT INTO human_requests (task_id, kind, question, asked_by, attempt, asked_at) VALUES ($1, 'input', $2, $3, $4, $5) RETURNING id",
      [p.taskId, question, holder.assigned_agent_id, holder.attempts, p.now],
    );
    await this.transitions.event(tx, p.taskId, "input:requested", p.now, holder.assigned_agent_id, holder.attempts, { question, requestId: request!.id });
    tx.emit("task:released", { taskId: p.taskId, persona: holder.persona_id });
    return { ok: true, outcome: "parked", attempt: holder.attempts };
  }

  async listParked(q: Q, limit = PARKED_LIST_LIMIT_DEFAULT): Promise<ParkedTask[]> {
    const rows = await q.rows<{ task_id: number; title: string; persona_id: string; status: "awaiting_approval" | "awaiting_input" }>(
      `SELECT s.task_id, t.title, s.persona_id, s.status FROM task_status s JOIN tasks t ON t.id = s.task_id
       WHERE s.status IN ('awaiting_approval','awaiting_input') ORDER BY s.task_id LIMIT $1`,
      [limit === 0 ? null : limit],
    );
    const out: ParkedTask[] = [];
    for (const row of rows) {
      const request = await q.one<RequestRow>(OPEN_REQUEST, [row.task_id]);
      out.push({ id: row.task_id, title: row.title, persona: row.persona_id, status: row.status, request: request === undefined ? null : toRequest(request) });
    }
    return out;
  }

  async requests(q: Q, taskId: number): Promise<HumanRequest[]> {
    if ((await q.one("SELECT 1 FROM task_status WHERE task_id = $1", [taskId])) === undefined) throw taskNotFound(taskId);
    return (await q.rows<RequestRow>("SELECT * FROM human_requests WHERE task_id = $1 ORDER BY id", [taskId])).map(toRequest);
  }

  async open(q: Q, taskId: number): Promise<HumanRequest | null> {
    const row = await q.one<RequestRow>(OPEN_REQUEST, [taskId]);
    return row === undefined ? null : toRequest(row);
  }

  /** Whether some approval's deadline with a default has passed (a read). */
  async hasDueDeadlines(q: Q, now: number): Promise<boolean> {
    const row = await q.one(
      `SELECT 1 FROM human_requests r JOIN task_status s ON s.task_id = r.task_id
       WHERE r.outcome IS NULL AND r.deadline_at IS NOT NULL AND r.deadline_at <= $1
         AND r.kind = 'approval' AND r.default_outcome IS NOT NULL AND s.status = 'awaiting_approval' LIMIT 1`,
      [now],
    );
    return row !== undefined;
  }

  async applyDeadlines(tx: Tx, p: { now: number; limit?: number | undefined }): Promise<Array<{ taskId: number; outcome: "approved" | "rejected" }>> {
    const rows = await tx.rows<{ id: number; task_id: number; default_outcome: "approve" | "reject" | null }>(
      `SELECT r.id, r.task_id, r.default_outcome FROM human_requests r JOIN task_status s ON s.task_id = r.task_id
       WHERE r.outcome IS NULL AND r.deadline_at IS NOT NULL AND r.deadline_at <= $1
         AND r.kind = 'approval' AND r.default_outcome IS NOT NULL AND s.status = 'awaiting_approval'
       ORDER BY r.deadline_at LIMIT $2`,
      [p.now, p.limit ?? DEADLINE_BATCH_DEFAULT],
    );
    const out: Array<{ taskId: number; outcome: "approved" | "rejected" }> = [];
    for (const row of rows) {
      if (row.default_outcome === "approve") {
        await this.approve(tx, { taskId: row.task_id, note: DEADLINE_APPROVE_NOTE, by: DEADLINE_BY, now: p.now });
        out.push({ taskId: row.task_id, outcome: "approved" });
      } else if (row.default_outcome === "reject") {
        await this.reject(tx, { taskId: row.task_id, reason: DEADLINE_REJECT_REASON, by: DEADLINE_BY, now: p.now });
        out.push({ taskId: row.task_id, outcome: "rejected" });
      }
    }
    return out;
  }

  /** Attaches to claimed tasks the questions their earlier attempts asked, with the answers. */
  async withInputs(q: Q, claimed: ClaimedTask[]): Promise<ClaimedTask[]> {
    if (claimed.length === 0) return claimed;
    const rows = await q.rows<AnsweredInputRow>(
      `SELECT task_id, question, answer, attempt, asked_at, answered_at, answered_by FROM human_requests
       WHERE task_id = ANY($1::bigint[]) AND kind = 'input' AND outcome = 'answered' ORDER BY task_id, id`,
      [claimed.map((t) => t.id)],
    );
    return attachInputs(claimed, rows);
  }

  /** A planner whose persona has `planApproval: <human persona>` enqueues its children behind one approval task holding the plan in full. */
  async gatePlan<P extends CompleteParams>(q: Q, params: P): Promise<P> {
    if (params.children === undefined || params.children.length === 0) return params;
    const row = await q.one<{ approver: string | null }>(
      "SELECT p.config::jsonb ->> 'planApproval' AS approver FROM task_status s JOIN personas p ON p.id = s.persona_id WHERE s.task_id = $1",
      [params.taskId],
    );
    return gatedPlan(params, row?.approver);
  }
}
