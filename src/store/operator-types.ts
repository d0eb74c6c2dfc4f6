/**
 * What people and their tools ask of the store beside tasks (src/store/types.ts assembles
 * these services into Store and re-exports everything here): approvals and questions parked
 * for a person, schedules, `roster why`, and the dashboard's reads.
 */
import type { Json, LeaseRef, LeaseResult, TaskState } from "./types.js";

// ---- humans in the loop (issue 17) ------------------------------------------------

/** What a person was asked (an approval gate reached, or an attempt's question) and what they said. */
export interface HumanRequest {
  id: number;
  taskId: number;
  kind: "approval" | "input";
  /** Approval: the task's title and description (a plan in full). Input: the question. */
  question: string;
  askedBy: string | null;
  attempt: number | null;
  askedAt: number;
  deadlineAt: number | null;
  defaultOutcome: "approve" | "reject" | null;
  outcome: "approved" | "rejected" | "answered" | null;
  answer: string | null;
  answeredBy: string | null;
  answeredAt: number | null;
}

/** A parked task with its open request (roster status, MCP get_progress). */
export interface ParkedTask {
  id: number;
  title: string;
  persona: string;
  status: "awaiting_approval" | "awaiting_input";
  request: HumanRequest | null;
}

export interface HumanService {
  /** Tasks parked for a person, oldest first, with their open request. */
  listParked(params?: { limit?: number }): Promise<ParkedTask[]>;
  /** Every request of a task (asked and answered), oldest first. */
  requests(params: { taskId: number }): Promise<HumanRequest[]>;
  /** An awaiting_approval task is completed with the note as its result; its dependents become ready as after any completion. */
  approve(params: { taskId: number; note?: string; by?: string; now: number }): Promise<{ readied: number[] }>;
  /** An awaiting_approval task fails (not retryable) with the reason; its dependents become blocked. */
  reject(params: { taskId: number; reason: string; by?: string; now: number }): Promise<{ blocked: number[] }>;
  /** An awaiting_input task returns to pending; its next attempt gets the question and this answer (ClaimedTask.inputs). */
  answer(params: { taskId: number; answer: string; by?: string; now: number }): Promise<{ status: TaskState }>;
  /**
   * Parks a leased attempt on a question: the lease is released without counting the
   * attempt and the task waits in awaiting_input. (A fail with error code
   * INPUT_REQUESTED, whose message is the question, does the same: that is how a
   * worker thread's ctx.askHuman reaches the store.)
   */
  askIfLeased(params: LeaseRef & { question: string; now: number }): Promise<LeaseResult>;
  /** Applies the default outcome of every approval whose deadline has passed; by = "deadline". */
  applyDeadlines(params: { now: number; limit?: number }): Promise<Array<{ taskId: number; outcome: "approved" | "rejected" }>>;
}

// ---- schedules (issue 17) -------------------------------------------------------------

export const MISSED_POLICIES = ["skip", "catch-up-once"] as const;
export type MissedPolicy = (typeof MISSED_POLICIES)[number];

/** The task a schedule enqueues at each fire (a TaskInput without graph fields). */
export interface ScheduleTaskTemplate {
  persona: string;
  title: string;
  description?: string;
  payload?: Json;
  priority?: number;
  maxAttempts?: number;
}

export interface ScheduleRecord {
  id: string;
  cron: string;
  timezone: string | null;
  task: ScheduleTaskTemplate;
  missed: MissedPolicy;
  source: string | null;
  pausedAt: number | null;
  /** null: the expression never fires again (a supervisor found no time after the last fire); such a schedule is never due. */
  nextFireAt: number | null;
  lastFireAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface ScheduleUpsert {
  id: string;
  cron: string;
  timezone?: string | null;
  task: ScheduleTaskTemplate;
  missed?: MissedPolicy;
  source?: string | null;
  /** First fire time after now (computed by the caller's cron parser). */
  nextFireAt: number;
}

export interface FireParams {
  scheduleId: string;
  /** The next_fire_at the caller read: the fire is taken only if it still stands (compare-and-set). */
  expectedNextFireAt: number;
  /** Fire times to enqueue a task for (epoch ms); each task's idempotency key is schedule:<id>@<fireAt>. */
  fireAts: number[];
  /** Fire times passed over by the missed-run policy (recorded in a schedule:skipped event). */
  skipped: number[];
  /** The cursor after this fire; null when the expression never fires again. */
  nextFireAt: number | null;
  by: string;
  now: number;
}

export interface FireResult {
  fired: boolean;
  taskIds: number[];
  /** Set when this call paused the schedule instead of firing it: PERSONA_NOT_FOUND and the message naming the persona. */
  paused?: { code: "PERSONA_NOT_FOUND"; message: string };
}

export interface ScheduleService {
  /** Adds or replaces schedules (a replaced schedule keeps its cursor unless its cron or zone changed). */
  upsert(params: { schedules: ScheduleUpsert[]; now: number }): Promise<ScheduleRecord[]>;
  list(): Promise<ScheduleRecord[]>;
  get(params: { id: string }): Promise<ScheduleRecord | null>;
  remove(params: { id: string; now: number }): Promise<void>;
  /**
   * paused: true stops firing; false resumes from `nextFireAt` (fires missed while paused are not run):
   * null when the expression never fires again, left out to keep the stored cursor. A pause keeps the cursor.
   */
  pause(params: { id: string; paused: boolean; nextFireAt?: number | null; now: number }): Promise<ScheduleRecord>;
  /** Schedules not paused whose next_fire_at <= now. */
  due(params: { now: number; limit?: number }): Promise<ScheduleRecord[]>;
  /**
   * Takes one fire (compare-and-set on next_fire_at) and enqueues its tasks; fired: false when another process took it.
   * A schedule whose persona is retired or gone is paused instead, by the same compare-and-set, with a
   * `schedule:paused` event giving the reason; `paused` says why (only to the process that paused it).
   */
  fire(params: FireParams): Promise<FireResult>;
  /** Earliest next_fire_at of a schedule not paused, or null. */
  nextFireAt(): Promise<number | null>;
}

// ---- roster why (issue 17) -------------------------------------------------------------

/**
 * One reason a task is not running, with a stable code. Codes so far: running,
 * finished, failed, cancelled, dependencies_unmet, blocked_by, scheduled_later,
 * awaiting_approval, awaiting_input, persona_at_limit, no_supervisor, external_persona,
 * persona_retired, persona_unknown, ready. Reserved for the economics work (budgets, breakers,
 * provider limits are gates the claim checks, not states): budget_exhausted,
 * breaker_open, provider_paused, rate_limited (see WhyGateReader).
 */
export interface WhyReason {
  code: string;
  message: string;
  data?: { [key: string]: Json };
}

export interface WhyReport {
  taskId: number;
  title: string;
  persona: string;
  status: TaskState;
  /** Time the report was made for. */
  at: number;
  reasons: WhyReason[];
}

export interface WhyService {
  /** Every reason the task is not running now (docs/ARCHITECTURE.md, "Task states"); TASK_NOT_FOUND for an unknown id. */
  explain(params: { taskId: number; now: number }): Promise<WhyReport>;
}

// ---- dashboard reads (issue 20) -------------------------------------------------------

export interface UiTaskPageParams { status?: TaskState | TaskState[]; persona?: string; rootId?: number; topLevel?: boolean; query?: string; beforeId?: number; limit: number }
export interface UiTaskRow { id: number; title: string; persona: string; parentId: number | null; rootId: number; status: TaskState; attempts: number; maxAttempts: number; progress: number | null; progressMessage: string | null; createdAt: number; updatedAt: number; errorCode: string | null; dependsOn: number[] }
export interface UiThroughputBucket { at: number; completed: number; failed: number; retried: number }
/** A concurrency key at its limit (docs/economics.md): the tasks holding it, and how many of its tasks are pending. */
export interface UiFullKey { key: string; running: number; limit: number; holders: number[]; pending: number }
export interface UiReadService {
  /** Task summaries (no payload or result), newest first, ids below beforeId; `query` matches the title, case-insensitively. */
  taskPage(params: UiTaskPageParams): Promise<UiTaskRow[]>;
  /** Completions, failures and retries per bucket since `since`, from the audit trail; empty buckets left out. */
  throughput(params: { since: number; bucketMs: number }): Promise<UiThroughputBucket[]>;
  /** Concurrency keys at their limit, by key, at most `limit` of them. */
  fullKeys(params: { limit: number }): Promise<UiFullKey[]>;
}
