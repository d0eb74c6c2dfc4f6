import { z } from "zod";

/**
 * Retry policy: pure code. The store records the run_at this returns; nothing here
 * touches a database or a clock of its own.
 */
export const BACKOFF_KINDS = ["fixed", "exponential"] as const;

export const MAX_ATTEMPTS_DEFAULT = 3;
export const BACKOFF_BASE_MS_DEFAULT = 1_000;
export const BACKOFF_MAX_MS_DEFAULT = 60_000;
export const BACKOFF_JITTER_DEFAULT = 0.2;
export const TIMEOUT_MS_DEFAULT = 30 * 60_000;
export const LEASE_MS_DEFAULT = 30_000;

/** The fields of a retry policy, without cross-field rules (so it can be made partial). */
export const retryPolicyFields = z
  .object({
    /** Attempts in all, the first included. */
    maxAttempts: z.number().int().min(1).max(1000),
    backoff: z.enum(BACKOFF_KINDS),
    /** Delay before the second attempt, in ms. */
    baseMs: z.number().int().min(0).max(7 * 24 * 3_600_000),
    /** Upper bound of any delay, in ms. */
    maxMs: z.number().int().min(0).max(7 * 24 * 3_600_000),
    /** Fraction 0..1 of the delay that is randomised (see nextDelayMs). */
    jitter: z.number().min(0).max(1),
  })
  .strict();

export const retryPolicySchema = retryPolicyFields.refine((p) => p.maxMs >= p.baseMs, {
  message: "maxMs must be >= baseMs",
  path: ["maxMs"],
});

export type RetryPolicy = z.infer<typeof retryPolicySchema>;

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: MAX_ATTEMPTS_DEFAULT,
  backoff: "exponential",
  baseMs: BACKOFF_BASE_MS_DEFAULT,
  maxMs: BACKOFF_MAX_MS_DEFAULT,
  jitter: BACKOFF_JITTER_DEFAULT,
};

/**
 * Delay after failed attempt number `attempt` (1-based) before the next one.
 * Jitter subtracts up to `jitter` of the delay, so the bound `maxMs` always holds
 * and retries of many tasks failing together spread out.
 */
export function nextDelayMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  const raw = policy.backoff === "fixed" ? policy.baseMs : policy.baseMs * 2 ** Math.min(exponent, 52);
  const capped = Math.min(raw, policy.maxMs);
  const jittered = capped * (1 - policy.jitter * random());
  return Math.max(0, Math.round(jittered));
}

export function nextRunAt(attempt: number, policy: RetryPolicy, now: number, random: () => number = Math.random): number {
  return now + nextDelayMs(attempt, policy, random);
}

/** Whether a task that failed attempt `attempt` has another one left. */
export function hasAttemptsLeft(attempt: number, policy: Pick<RetryPolicy, "maxAttempts">): boolean {
  return attempt < policy.maxAttempts;
}

/** The parts of a persona's config that decide a task's policy. */
export interface PersonaPolicyConfig {
  retry?: Partial<RetryPolicy>;
  timeoutMs?: number;
  leaseMs?: number;
}

export interface TaskPolicyInput extends Partial<RetryPolicy> {
  timeoutMs?: number;
}

/** Persona policy, overridden per task, over the defaults: fixed at enqueue. */
export function resolveTaskPolicy(
  persona: PersonaPolicyConfig,
  override: TaskPolicyInput = {},
): { policy: RetryPolicy; timeoutMs: number } {
  const defined = <T extends object>(value: T): Partial<T> =>
    Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
  const { timeoutMs, ...retry } = override;
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...defined(persona.retry ?? {}), ...defined(retry) };
  if (policy.maxMs < policy.baseMs) policy.maxMs = policy.baseMs;
  return { policy, timeoutMs: timeoutMs ?? persona.timeoutMs ?? TIMEOUT_MS_DEFAULT };
}
