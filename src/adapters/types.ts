import type { ClaimedTask, Json, TaskInput } from "../store/types.js";
import type { AdapterConfig } from "../personas/schema.js";
import type { AttemptUsage } from "../store/economics.js";

/**
 * The adapter interface: what runs inside a worker thread for one task attempt.
 * Adapters never touch SQLite; they get the task as data and report through ctx.
 *
 * The task is the claimed task (its fields and their meaning: ClaimedTask) without its
 * lease (token, stamp, length) and claim times, which stay with the holder; `inputs` and
 * `previous` are present only when the claim carries them. src/adapters/task-view.ts makes it.
 */
export type AdapterTask = Omit<ClaimedTask, "leaseToken" | "leaseExpiresAt" | "leaseMs" | "readyAt" | "claimedAt">;

export interface AdapterPersona {
  id: string;
  name: string;
  /** The persona's definition (system prompt). */
  definition: string;
  adapter: AdapterConfig;
  /** Folder of the persona file; relative adapter paths resolve against it. Null when only the database has it. */
  dir: string | null;
  /** The persona file itself, for messages that must name it; null or absent when only the database has it. */
  file?: string | null;
}

export interface AdapterLogger {
  debug(message: string, data?: Record<string, unknown>): void;
  info(message: string, data?: Record<string, unknown>): void;
  warn(message: string, data?: Record<string, unknown>): void;
  error(message: string, data?: Record<string, unknown>): void;
}

export interface AdapterContext {
  /** Aborted on timeout, lost lease, cancellation or shutdown. Stop promptly when it fires. */
  signal: AbortSignal;
  /** Reports progress: fraction 0..1 and an optional message. Throttled by the supervisor. */
  progress(fraction: number, message?: string): void;
  logger: AdapterLogger;
  persona: AdapterPersona;
  /**
   * Reports what the attempt spent (tokens by kind, model, cost if known); calls add
   * up, and the total is recorded with the attempt's outcome (docs/economics.md).
   * Throws VALIDATION for a report that is not usage. Optional for contexts made
   * outside a supervisor's worker threads.
   */
  reportUsage?(usage: AttemptUsage): void;
  /**
   * Reports what the attempt has spent so far as a running total (each call replaces
   * the last), for sources that read cumulative figures as they stream (the agent
   * CLIs). Like reportUsage it reaches the supervisor while the attempt runs, where
   * it is checked against the task's and goal's budgets; when the attempt ends
   * without usage of its own in its result or error (killed mid-run), this total is
   * what is recorded. Throws VALIDATION for a report that is not usage.
   */
  reportUsageTotal?(usage: AttemptUsage): void;
  /**
   * Asks a person. Returns the answer when an earlier attempt asked this same
   * question and it was answered (task.inputs); otherwise throws (do not catch it):
   * the attempt ends uncounted, the task waits in awaiting_input for `roster answer`,
   * and the next attempt runs with the answer. Always present in a supervisor's
   * worker threads; optional for contexts made elsewhere (roster run, tests).
   */
  askHuman?(question: string): string;
}

/**
 * What `run` may resolve to. An object whose only keys are `result` and/or `tasks`
 * (with `tasks` an array) is structured output: `tasks` are enqueued as children of
 * this task in the transaction that completes it. Any other value is the result.
 */
export interface AdapterOutput {
  result?: Json;
  tasks?: TaskInput[];
}

/**
 * Runs one attempt. A thrown Error fails it: its `retryable` (default true) and `code` are kept,
 * and its `details` as JSON keeps them (src/errors.ts toErrorObject), so `details: { failure:
 * "rate-limit", retryAfterMs }` or `{ failure: "usage-limit", resetAt }` reports a provider limit
 * (docs/economics.md, "Provider limits").
 */
export type AdapterRun = (task: AdapterTask, ctx: AdapterContext) => Promise<unknown> | unknown;

export interface Adapter {
  run: AdapterRun;
}
