/**
 * The decisions of `tasks.settle` and `tasks.claim` that need no database
 * (docs/ARCHITECTURE.md, "One path per transition"), made once for both engines: which
 * settlements take the batched completion path, what a completion whose output does not
 * validate records, which failure is a question for a person, and the claim's parameter
 * checks. SQLite (src/store/sqlite/store.ts) and PostgreSQL (src/store/postgres/store.ts)
 * each run the writes in their own transaction.
 */
import { RosterError, type ErrorObject } from "../errors.js";
import { INPUT_REQUESTED } from "./humans.js";
import { completionJson } from "./input.js";
import { storedError } from "./stored-error.js";
import { hasAttemptsLeft, nextRunAt, type RetryPolicy } from "../policy/retry.js";
import { reapDecision, type ReapDecision } from "./lost-leases.js";
import type { ClaimParams, FailureToSettle, Settlement } from "./types.js";
import { resultCarrier, usageOfSettlement, type NormalUsage } from "./usage-values.js";

/** A completion without children whose result and usage validated: completeMany records a batch of them in a few statements. */
export interface FastCompletion {
  index: number;
  taskId: number;
  leaseToken: string;
  resultJson: string | null;
  usage: NormalUsage | null;
}

/**
 * Splits a settle batch: completions without children whose result and usage validate
 * (`fast`, for completeMany) and the rest (`slow`: failures, releases, children, bad
 * output, a task given a second time), each with its index in the batch. No task appears
 * twice among the fast ones (one outcome per attempt).
 */
export function splitSettlements(
  settlements: readonly Settlement[],
  maxPayloadBytes: number,
): { fast: FastCompletion[]; slow: Array<{ s: Settlement; index: number }> } {
  const fast: FastCompletion[] = [];
  const slow: Array<{ s: Settlement; index: number }> = [];
  const seen = new Set<number>();
  settlements.forEach((s, index) => {
    if (s.kind === "complete" && !hasChildren(s) && !seen.has(s.taskId)) {
      const checked = checkedCompletion(s, maxPayloadBytes);
      if (checked !== null) {
        seen.add(s.taskId);
        fast.push({ index, taskId: s.taskId, leaseToken: s.leaseToken, ...checked });
        return;
      }
    }
    slow.push({ s, index });
  });
  return { fast, slow };
}

/** A completion's result JSON and usage when both validate; null when either does not (the one-by-one path then fails the attempt, saying why). */
function checkedCompletion(s: Settlement & { kind: "complete" }, maxPayloadBytes: number): { resultJson: string | null; usage: NormalUsage | null } | null {
  try {
    const resultJson = completionJson(s, maxPayloadBytes);
    return { resultJson, usage: usageOfSettlement(s.usage, resultCarrier(s)) };
  } catch (error) {
    if (error instanceof RosterError) return null;
    throw error;
  }
}

/** Whether a completion enqueues children (it then runs in a savepoint, so a bad child list fails its own task only). */
export function hasChildren(s: { children?: readonly unknown[] | undefined }): boolean {
  return s.children !== undefined && s.children.length > 0;
}

/** What a completion whose output did not validate records under `invalid: "fail"`: a failed attempt, retryable, saying why. */
export function invalidOutputError(error: RosterError): ErrorObject {
  return storedError({ name: "RosterError", code: "ADAPTER_OUTPUT_INVALID", message: `adapter output rejected: ${error.message}` }, true);
}

/**
 * The question a failure asks a person, or null: a failure with code INPUT_REQUESTED parks
 * the task uncounted (ctx.askHuman, `::roster:ask`), its message being the question.
 */
export function questionOf(s: Settlement & { kind: "fail" }): string | null {
  return (s.error as { code?: unknown }).code === INPUT_REQUESTED ? String(s.error.message) : null;
}

/** The columns of a leased task's row a failed attempt is settled from, as both engines read them. */
export interface FailingTaskRow {
  persona_id: string;
  attempts: number;
  max_attempts: number;
  assigned_agent_id: string | null;
  retry_policy: string;
}

/** A failed attempt of the task `row` holds (its attempt, policy and holder), with `error` in stored form, as each store's settleFailure takes it. */
export function failureToSettle(taskId: number, row: FailingTaskRow, error: ErrorObject, p: { now: number; random?: (() => number) | undefined }): FailureToSettle {
  return {
    taskId,
    persona: row.persona_id,
    attempt: row.attempts,
    maxAttempts: row.max_attempts,
    policy: JSON.parse(row.retry_policy) as RetryPolicy,
    agentId: row.assigned_agent_id,
    error,
    now: p.now,
    random: p.random ?? Math.random,
  };
}

/**
 * What a settled failure records, for every engine's settleFailure: back to pending at
 * `runAt`, or failed for good. A reaped lease (`lost`) is bounded by the task's lost leases
 * (reapDecision); a failed attempt is retried while its error is retryable and its policy
 * (with the task's maxAttempts) leaves attempts.
 */
export function failureDecision(p: FailureToSettle): ReapDecision {
  if (p.lost !== undefined) return reapDecision({ leasesLost: p.lost.leasesLost, maxAttempts: p.maxAttempts, policy: p.policy, now: p.now, random: p.random });
  const policy = { ...p.policy, maxAttempts: p.maxAttempts };
  return p.error.retryable && hasAttemptsLeft(p.attempt, policy) ? { outcome: "retrying", runAt: nextRunAt(p.attempt, policy, p.now, p.random) } : { outcome: "failed" };
}

/** The data of a settled failure's task:retrying (with its runAt) or task:failed (with the dependents it blocked) row; a reaped lease's says it was not counted. */
export function failureEventData(p: FailureToSettle, settled: { runAt: number } | { blocked: number }): Record<string, unknown> {
  const error = { code: p.error.code, message: p.error.message };
  const uncounted = p.lost === undefined ? {} : { counted: false, leasesLost: p.lost.leasesLost };
  return "runAt" in settled ? { runAt: settled.runAt, error, ...uncounted } : { error, retryable: p.error.retryable, blocked: settled.blocked, ...uncounted };
}

/** Refuses a claim's limit or lease length that is not a positive integer, before any write. */
export function checkClaimParams(p: ClaimParams): void {
  if (p.limit !== undefined && (!Number.isInteger(p.limit) || p.limit < 1)) {
    throw new RosterError("VALIDATION", "limit: must be a positive integer", { details: { field: "limit" } });
  }
  if (p.leaseMs !== undefined && (!Number.isInteger(p.leaseMs) || p.leaseMs < 1)) {
    throw new RosterError("VALIDATION", `leaseMs: must be a positive integer of milliseconds, got ${String(p.leaseMs)}`, { details: { field: "leaseMs" } });
  }
}
