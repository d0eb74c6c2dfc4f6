/**
 * The params and answers of the lease transitions (docs/ARCHITECTURE.md, "One path per
 * transition"): a claim, the lease a writer holds, a settlement (complete, fail, release)
 * and what `tasks.settle` recorded for it, progress. src/store/types.ts re-exports them.
 */
import type { ErrorObject } from "../errors.js";
import type { RetryPolicy } from "../policy/retry.js";
import type { AttemptUsage } from "./economics.js";
import type { Json, TaskInput } from "./types.js";
/** A claim of a persona's best ready tasks, or of one named task if it is ready now. */
export type ClaimParams = {
  agentId: string;
  /** Up to this many tasks, in one statement (a claim by task id takes at most that one). */
  limit?: number;
  /** Lease length; defaults to the persona's leaseMs. */
  leaseMs?: number;
  now: number;
} & ({ persona: string; taskId?: undefined } | { taskId: number; persona?: undefined });

export interface LeaseRef {
  taskId: number;
  leaseToken: string;
}

export type LeaseResult = { ok: true } | LeaseLost;
export type LeaseLost = { ok: false; code: "LEASE_LOST" };

export interface CompleteParams extends LeaseRef {
  result?: Json;
  /**
   * The result as JSON text its producer made with JSON.stringify, instead of `result`
   * (never both): stored as it is, its size checked, so a result is serialised once on
   * its way from the adapter to the database (the pool's worker makes it).
   */
  resultJson?: string;
  /** New tasks to enqueue as children of this one, in the same transaction. */
  children?: TaskInput[];
  /** What the attempt spent; default: `result.usage` when it has the shape (docs/economics.md). */
  usage?: AttemptUsage;
  now: number;
}

export interface FailParams extends LeaseRef {
  /** `error.retryable: false` ends the task whatever its policy; default true. */
  error: ErrorObject | { message: string; code?: string; retryable?: boolean; details?: unknown };
  /** What the attempt spent; default: the error's `details.usage`. */
  usage?: AttemptUsage;
  now: number;
  /** Source of jitter; injectable for tests. */
  random?: () => number;
}

export interface ReleaseParams extends LeaseRef {
  /** Give back without counting the attempt (shutdown, agent leaving). */
  reason?: string;
  delayMs?: number;
  /** What the attempt spent before it was given back. */
  usage?: AttemptUsage;
  /**
   * The error of a failure given back uncounted (a provider's limit, a budget): kept as the task's
   * last error, so its next claim gets it as `previous` and continues the attempt (its session, its
   * kept home: docs/agent-clis.md). Absent: the last error stays as it was.
   */
  error?: ErrorObject;
  now: number;
}

/** One finished attempt, as `tasks.settle` records it (docs/ARCHITECTURE.md, "One path per transition"). */
export type Settlement =
  | ({ kind: "complete" } & Omit<CompleteParams, "now">)
  | ({ kind: "fail" } & Omit<FailParams, "now">)
  | ({ kind: "release" } & Omit<ReleaseParams, "now">);

/**
 * What `tasks.settle` recorded for one settlement: the task's outcome and the attempt it
 * ended, or LEASE_LOST (nothing written). A completion whose output did not validate is
 * recorded as a failed attempt (code ADAPTER_OUTPUT_INVALID), unless the caller asked to
 * have it refused; a failure with code INPUT_REQUESTED parks the task for a person.
 */
export type SettlementResult =
  | { ok: true; outcome: "completed"; attempt: number; childIds: number[]; childRefs: Record<string, number> }
  | { ok: true; outcome: "retrying"; attempt: number; runAt: number; code: string }
  | { ok: true; outcome: "failed"; attempt: number; blocked: number[]; code: string }
  | { ok: true; outcome: "released"; attempt: number; runAt: number }
  | { ok: true; outcome: "parked"; attempt: number }
  | LeaseLost;

/** A completion's result (a bad output refused, not recorded: see InvalidOutput). */
export type CompleteResult = Extract<SettlementResult, { outcome: "completed" }> | LeaseLost;
/** A failure's result: retried, failed for good, released uncounted (a provider's limit) or parked (a question). */
export type FailResult = Exclude<SettlementResult, { outcome: "completed" }>;
/** An attempt that failed and counted: retried later or failed for good. */
export type CountedFailure = Extract<SettlementResult, { outcome: "retrying" | "failed" }>;
/**
 * A failed attempt (or a reaped lease, `lost`) as each store's settleFailure takes it: back to
 * pending with backoff, or failed for good (src/store/lost-leases.ts bounds the leases lost).
 */
export interface FailureToSettle {
  taskId: number;
  persona: string;
  attempt: number;
  maxAttempts: number;
  policy: RetryPolicy;
  agentId: string | null;
  /** Stored form (storedError); its `retryable` decides whether the task may run again. */
  error: ErrorObject;
  now: number;
  random: () => number;
  lost?: { leaseToken: string; leasesLost: number };
}
export type ParkResult = Extract<SettlementResult, { outcome: "parked" }>;

/**
 * Settle's answer to output that does not validate (a result too large or not JSON, bad
 * children, bad usage): "fail" records a failed attempt saying why (an adapter's output);
 * "refuse" throws VALIDATION before any write, the lease kept, so a caller that can correct
 * itself (an MCP agent) may try again.
 */
export type InvalidOutput = "fail" | "refuse";

export interface ProgressParams extends LeaseRef {
  /** 0..1 */
  fraction: number;
  message?: string;
  now: number;
}
