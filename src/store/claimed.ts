/**
 * A claimed task as every store hands it over (ClaimedTask), built from the rows its
 * claim statements return: one mapping for both engines, so the task view an attempt
 * starts from cannot differ between SQLite and PostgreSQL.
 */
import type { ErrorObject } from "../errors.js";
import { parseJson } from "./rows.js";
import type { ClaimedTask, DependencyResult, PreviousAttempt, TaskState } from "./types.js";

/** The lease fields a claim statement returns per claimed row. */
export interface ClaimRow {
  task_id: number;
  attempts: number;
  max_attempts: number;
  lease_token: string;
  lease_expires_at: number;
  ready_at: number | null;
  run_at: number;
  priority: number;
}

/** The task's own fields a claim hands over (tasks and task_status columns). */
export interface ClaimDetail {
  title: string;
  description: string;
  persona_id: string;
  payload: string | null;
  parent_id: number | null;
  timeout_ms: number;
  last_error: string | null;
}

/** A dependency's result as read for a claim (its result as stored JSON text). */
export interface DependencyRow {
  id: number;
  title: string;
  persona: string;
  status: TaskState;
  result: string | null;
}

/** RETURNING order is unspecified: tasks go back in claim order (priority, then oldest). */
export function byClaimOrder(a: ClaimRow, b: ClaimRow): number {
  return b.priority - a.priority || a.run_at - b.run_at || a.task_id - b.task_id;
}

export function dependencyResult(d: DependencyRow): DependencyResult {
  return { id: d.id, title: d.title, persona: d.persona, status: d.status, result: parseJson(d.result) };
}

/** The last failed attempt, as a claim hands it to the next one (ClaimedTask.previous), from task_status.last_error. */
export function previousAttempt(lastError: string | null): { previous?: PreviousAttempt } {
  const error = parseJson<Partial<ErrorObject>>(lastError);
  if (error === null || typeof error !== "object" || typeof error.message !== "string") return {};
  return {
    previous: {
      code: typeof error.code === "string" ? error.code : "ADAPTER_FAILED",
      message: error.message,
      retryable: error.retryable !== false,
      ...(error.details !== undefined && error.details !== null ? { details: error.details as Record<string, unknown> } : {}),
    },
  };
}

/** One claimed task from its lease row, its details and its dependencies' results. */
export function claimedTask(row: ClaimRow, task: ClaimDetail, dependencies: DependencyResult[], leaseMs: number, now: number): ClaimedTask {
  return {
    id: row.task_id,
    title: task.title,
    description: task.description,
    persona: task.persona_id,
    payload: parseJson(task.payload),
    priority: row.priority,
    parentId: task.parent_id,
    attempt: row.attempts,
    maxAttempts: row.max_attempts,
    leaseToken: row.lease_token,
    leaseExpiresAt: row.lease_expires_at,
    leaseMs,
    timeoutMs: task.timeout_ms,
    readyAt: row.ready_at ?? row.run_at,
    claimedAt: now,
    dependencies,
    ...previousAttempt(task.last_error),
  };
}
