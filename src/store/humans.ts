/**
 * Tasks parked for a person (docs/ARCHITECTURE.md, "Task states": awaiting_approval,
 * awaiting_input) as both stores keep them, without the database: a request row's mapping,
 * the checks on a person's text and on a task's state, what an approval or a rejection
 * records, a deadline's default decision, the answered questions a claim hands over, and a
 * plan held for approval. SQLite (src/store/sqlite/humans.ts) and PostgreSQL
 * (src/store/postgres/humans.ts) hold only their SQL and decide here.
 */
import { RosterError, type ErrorObject } from "../errors.js";
import type { ClaimedTask, CompleteParams, HumanInput, HumanRequest, TaskInput, TaskState } from "./types.js";

/** Longest question, approval note, rejection reason or answer kept, in characters. */
export const HUMAN_TEXT_MAX = 64 * 1024;
/** Error code by which an attempt's failure asks a person instead (ctx.askHuman, `::roster:ask`, MCP). */
export const INPUT_REQUESTED = "INPUT_REQUESTED";
export const PARKED_LIST_LIMIT_DEFAULT = 100;
/** Approvals whose deadline passed that one applyDeadlines() call decides when the caller names no limit. */
export const DEADLINE_BATCH_DEFAULT = 100;

/** A `human_requests` row as both engines read it. */
export interface RequestRow {
  id: number;
  task_id: number;
  kind: "approval" | "input";
  question: string;
  asked_by: string | null;
  attempt: number | null;
  asked_at: number;
  deadline_at: number | null;
  default_outcome: "approve" | "reject" | null;
  outcome: "approved" | "rejected" | "answered" | null;
  answer: string | null;
  answered_by: string | null;
  answered_at: number | null;
}

export function toRequest(row: RequestRow): HumanRequest {
  return {
    id: row.id,
    taskId: row.task_id,
    kind: row.kind,
    question: row.question,
    askedBy: row.asked_by,
    attempt: row.attempt,
    askedAt: row.asked_at,
    deadlineAt: row.deadline_at,
    defaultOutcome: row.default_outcome,
    outcome: row.outcome,
    answer: row.answer,
    answeredBy: row.answered_by,
    answeredAt: row.answered_at,
  };
}

/** A person's text: a string, trimmed of nothing, bounded. `field` names it in the error. */
export function humanText(value: unknown, field: string, required: boolean): string | null {
  if (value === undefined || value === null) {
    if (required) throw new RosterError("VALIDATION", `${field}: is required`, { details: { field } });
    return null;
  }
  if (typeof value !== "string") throw new RosterError("VALIDATION", `${field}: must be a string`, { details: { field } });
  if (required && value.trim() === "") throw new RosterError("VALIDATION", `${field}: must not be empty`, { details: { field } });
  if (value.length > HUMAN_TEXT_MAX) {
    throw new RosterError("VALIDATION", `${field}: longer than ${HUMAN_TEXT_MAX} characters`, { details: { field } });
  }
  return value;
}

/** A task's state row as a person's decision reads it. */
export interface ParkedStatusRow {
  status: TaskState;
  persona_id: string;
  attempts: number;
}

/** Refuses a decision on a task that is not parked the way the decision needs (approve, reject: awaiting_approval; answer: awaiting_input). */
export function requireState(taskId: number, row: ParkedStatusRow, expected: TaskState, verb: string): ParkedStatusRow {
  if (row.status !== expected) {
    throw new RosterError("INVALID_STATE", `task ${taskId} is ${row.status}; only a task ${expected} can be ${verb}`, {
      details: { taskId, status: row.status },
    });
  }
  return row;
}

/** The result an approved task records: the note is the result dependents receive, like any task's result. */
export function approvalResult(note: string | null, by: string | null): string {
  return JSON.stringify({ approved: true, note, by });
}

/** The error a rejected task records (as JSON text), never retried. */
export function rejectionError(reason: string, by: string | null): string {
  const error: ErrorObject = { name: "RosterError", code: "REJECTED", message: `rejected${by === null ? "" : ` by ${by}`}: ${reason}`, retryable: false };
  return JSON.stringify(error);
}

/** Who decides an approval whose deadline passed, and with which words. */
export const DEADLINE_BY = "deadline";
export const DEADLINE_APPROVE_NOTE = "approved by default: the deadline passed";
export const DEADLINE_REJECT_REASON = "the deadline passed without an approval";

/** An answered question as the claim reads it for the task's next attempt. */
export interface AnsweredInputRow {
  task_id: number;
  question: string;
  answer: string;
  attempt: number | null;
  asked_at: number;
  answered_at: number;
  answered_by: string | null;
}

/** Attaches to claimed tasks the questions their earlier attempts asked, with the answers (rows in task, then request order). */
export function attachInputs(claimed: ClaimedTask[], rows: readonly AnsweredInputRow[]): ClaimedTask[] {
  if (rows.length === 0) return claimed;
  const inputs = new Map<number, HumanInput[]>();
  for (const row of rows) {
    let list = inputs.get(row.task_id);
    if (list === undefined) inputs.set(row.task_id, (list = []));
    list.push({ question: row.question, answer: row.answer, attempt: row.attempt, askedAt: row.asked_at, answeredAt: row.answered_at, answeredBy: row.answered_by });
  }
  for (const task of claimed) {
    const list = inputs.get(task.id);
    if (list !== undefined) task.inputs = list;
  }
  return claimed;
}

/**
 * A planner whose persona has `planApproval: <human persona>` (the approver, null or
 * undefined when it has none) does not fan out unseen: its children are enqueued behind
 * one approval task of that persona whose description is the plan in full. Other
 * completions pass unchanged.
 */
export function gatedPlan<P extends CompleteParams>(params: P, approver: string | null | undefined): P {
  if (params.children === undefined || params.children.length === 0) return params;
  if (approver === null || approver === undefined) return params;
  const refs = new Set(params.children.map((c) => c.ref).filter((r): r is string => r !== undefined));
  let ref = `plan-approval-${params.taskId}`;
  while (refs.has(ref)) ref = `_${ref}`;
  const gate: TaskInput = {
    ref,
    persona: approver,
    title: `Approve the plan of task ${params.taskId} (${params.children.length} task${params.children.length === 1 ? "" : "s"})`,
    description: planText(params.children),
  };
  const children = params.children.map((child) => ({ ...child, dependsOn: [...(child.dependsOn ?? []), ref] }));
  return { ...params, children: [gate, ...children] };
}

/** The plan in full, as a person reads it: every task with its persona, dependencies, description and payload. */
export function planText(children: readonly TaskInput[]): string {
  const lines: string[] = [];
  children.forEach((child, index) => {
    const after = (child.dependsOn ?? []).map(String);
    lines.push(`${index + 1}. [${child.persona}] ${child.title}${child.ref === undefined ? "" : ` (ref ${child.ref})`}${after.length > 0 ? ` after ${after.join(", ")}` : ""}`);
    if (child.description !== undefined && child.description !== "") for (const line of child.description.split("\n")) lines.push(`   ${line}`);
    if (child.payload !== undefined) lines.push(`   payload: ${JSON.stringify(child.payload)}`);
  });
  return lines.join("\n");
}
