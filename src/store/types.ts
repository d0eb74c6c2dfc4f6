/**
 * The coordination store, as an interface. SQLite is the first implementation
 * (src/store/sqlite); a PostgreSQL one must be able to pass the same conformance
 * suite (test/store/conformance.ts). Nothing here names better-sqlite3.
 *
 * Every method takes one params object and is async. Writes that need a live lease
 * are named `…IfLeased` and report whether the lease held (`{ ok: false, code:
 * "LEASE_LOST" }`) instead of throwing from inside the database.
 */
import type { ErrorObject } from "../errors.js";
import type { RetryPolicy } from "../policy/retry.js";
import type { StoreEventBus } from "./events.js";
import type { AttemptUsage, EconomicsService } from "./economics.js";

export const TASK_STATES = [
  "waiting",
  "pending",
  "claimed",
  "in_progress",
  "completed",
  "failed",
  "cancelled",
  "blocked",
  /** A task of a `human` persona, parked until a person approves or rejects it (no lease, no attempt). */
  "awaiting_approval",
  /** An attempt asked a question (ctx.askHuman, `::roster:ask`): parked, lease released, attempt not counted, until answered. */
  "awaiting_input",
] as const;
export type TaskState = (typeof TASK_STATES)[number];
export const TERMINAL_STATES: readonly TaskState[] = ["completed", "failed", "cancelled"];
export const LEASED_STATES: readonly TaskState[] = ["claimed", "in_progress"];
/** Parked for a person: they need attention, not a worker. */
export const PARKED_STATES: readonly TaskState[] = ["awaiting_approval", "awaiting_input"];

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A persona as stored: its front matter (validated elsewhere) and its definition. */
export interface PersonaRecord {
  id: string;
  name: string;
  /** The markdown body: the persona's definition / system prompt. */
  definition: string;
  /** The validated front matter as JSON (adapter, concurrency, leaseMs, timeoutMs, retry …). */
  config: Record<string, unknown>;
  /** File it was last synced from; null when it came from elsewhere. */
  sourcePath: string | null;
  /** True while its file was present at the last sync. */
  filePresent: boolean;
  createdAt: number;
  updatedAt: number;
  /** Epoch ms it was retired (`roster personas retire`), or null while in service. */
  retiredAt: number | null;
}

export interface PersonaUpsert {
  id: string;
  name: string;
  definition: string;
  config: Record<string, unknown>;
  sourcePath: string | null;
}

/** Per-task overrides of the persona's policy. */
export interface TaskPolicyOverride {
  maxAttempts?: number;
  backoff?: RetryPolicy["backoff"];
  baseMs?: number;
  maxMs?: number;
  jitter?: number;
  timeoutMs?: number;
  /** This task's budget over all its attempts (docs/economics.md): the claim skips it once spent. */
  maxCostUsd?: number;
  maxTokens?: number;
  /** Tasks sharing this key (a repository, a file scope) run at most concurrencyLimit (default 1) at once, across every process. */
  concurrencyKey?: string;
  concurrencyLimit?: number;
}

/** One task of an enqueue batch, as accepted at every boundary (CLI plan files, MCP). */
export interface TaskInput {
  /** Local name inside the batch, so other tasks of the batch can depend on it. */
  ref?: string;
  persona: string;
  title: string;
  description?: string;
  /** Local refs of this batch, or ids of existing tasks. */
  dependsOn?: Array<string | number>;
  priority?: number;
  payload?: Json;
  maxAttempts?: number;
  /** Per-task overrides of the persona's retry policy and timeout. */
  policy?: TaskPolicyOverride;
  /** Delay before the task becomes ready, in ms. */
  delayMs?: number;
  /** An enqueue with a key that exists returns the existing task instead of a new one. */
  idempotencyKey?: string;
}

export interface EnqueueParams {
  tasks: TaskInput[];
  /** Parent of every task of the batch (decomposition). */
  parentId?: number | null;
  createdBy?: string | null;
  now: number;
}

export interface EnqueueResult {
  /** New ids in input order. */
  ids: number[];
  /** ref → id for the tasks that had a ref. */
  refs: Record<string, number>;
}

export interface DependencyResult {
  id: number;
  title: string;
  persona: string;
  status: TaskState;
  result: Json | null;
}

/** What a worker receives when it claims a task. */
export interface ClaimedTask {
  id: number;
  title: string;
  description: string;
  persona: string;
  payload: Json | null;
  priority: number;
  parentId: number | null;
  attempt: number;
  maxAttempts: number;
  leaseToken: string;
  leaseExpiresAt: number;
  leaseMs: number;
  timeoutMs: number;
  /** When the task became ready (enqueue or last dependency done, or retry run_at). */
  readyAt: number;
  claimedAt: number;
  /** Results of its direct dependencies, so a reviewer sees what was produced. */
  dependencies: DependencyResult[];
  /** Questions earlier attempts asked a person, with the answers; only present when there are some. */
  inputs?: HumanInput[];
  /** How the last failed attempt ended (task_status.last_error), so this one can continue where it stopped; only present after a failure. */
  previous?: PreviousAttempt;
}

/** The last failed attempt's stored error: an agent CLI's keeps its session id and its worktree's saved work in `details`. */
export interface PreviousAttempt {
  code: string;
  message: string;
  retryable: boolean;
  details?: Record<string, unknown>;
}

/** A question an attempt asked and the person's answer, as the next attempt sees it. */
export interface HumanInput {
  question: string;
  answer: string;
  /** The attempt that asked. */
  attempt: number | null;
  askedAt: number;
  answeredAt: number;
  answeredBy: string | null;
}

export interface TaskRecord {
  id: number;
  title: string;
  description: string;
  persona: string;
  payload: Json | null;
  parentId: number | null;
  rootId: number;
  createdBy: string | null;
  priority: number;
  idempotencyKey: string | null;
  createdAt: number;
  policy: RetryPolicy;
  timeoutMs: number;
  status: TaskState;
  unmetDependencies: number;
  runAt: number;
  attempts: number;
  maxAttempts: number;
  assignedAgentId: string | null;
  /**
   * The lease's renewal stamp (docs/ARCHITECTURE.md, "Liveness"): its holder's last renewal
   * (or claim) plus `leaseMs`, on the holder's clock (PostgreSQL: the server's). Not a
   * deadline anyone enforces: a judge reaps the lease once it has seen the stamp stand
   * still for `leaseMs`. Null when the task holds no lease.
   */
  leaseExpiresAt: number | null;
  /** The current (or last) lease's length, in ms: the last renewal was at `leaseExpiresAt - leaseMs`. */
  leaseMs: number | null;
  claimedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  progress: number | null;
  progressMessage: string | null;
  result: Json | null;
  error: ErrorObject | null;
  updatedAt: number;
  dependsOn: number[];
}

export interface TaskEvent {
  id: number;
  taskId: number | null;
  type: string;
  at: number;
  agentId: string | null;
  attempt: number | null;
  data: Json | null;
}

export interface TaskDetail extends TaskRecord {
  dependencies: DependencyResult[];
  dependents: Array<{ id: number; title: string; persona: string; status: TaskState }>;
  children: Array<{ id: number; title: string; persona: string; status: TaskState }>;
  events: TaskEvent[];
}

export interface ListTasksParams {
  status?: TaskState | TaskState[];
  persona?: string;
  parentId?: number;
  /** Only the subtree (by parent links) under this root task. */
  rootId?: number;
  /** Return tasks with id > afterId (cursor pagination). */
  afterId?: number;
  /** 0 for all. */
  limit?: number;
  /** Highest ids first (default: oldest first). */
  newestFirst?: boolean;
}

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

export interface HeartbeatParams {
  agentId: string;
  now: number;
  /** Renew only these (task id, token) pairs; default every lease the agent holds. */
  leases?: LeaseRef[];
}

export interface HeartbeatResult {
  /** False when the agent is unknown or was expired/deregistered. */
  agentActive: boolean;
  /** Leases that were renewed. */
  renewed: LeaseRef[];
  /** Of the leases asked about, those no longer held. */
  lost: LeaseRef[];
}

export interface AgentRecord {
  id: string;
  name: string;
  kind: string;
  personaId: string | null;
  status: "active" | "expired" | "deregistered";
  pid: number | null;
  hostname: string | null;
  heartbeatTimeoutMs: number;
  registeredAt: number;
  lastHeartbeatAt: number;
  heldTasks: number;
}

export interface RegisterAgentParams {
  /** Supply one to resume a session; otherwise one is generated. */
  id?: string;
  name: string;
  kind: "supervisor" | "mcp" | "cli" | string;
  personaId?: string | null;
  pid?: number | null;
  hostname?: string | null;
  heartbeatTimeoutMs: number;
  now: number;
}

export interface ReapParams {
  now: number;
  random?: () => number;
  limit?: number;
}

export interface ReapResult {
  /** Tasks whose lease expired and that went back to pending. */
  retried: Array<{ taskId: number; leaseToken: string; persona: string; attempt: number; runAt: number }>;
  /** Tasks whose lease expired on their last attempt. */
  failed: Array<{ taskId: number; leaseToken: string; persona: string; attempt: number }>;
  /** Agents whose heartbeat was older than their timeout. */
  expiredAgents: string[];
}

export interface CountsParams {
  rootId?: number;
}

/** persona → state → count (states with 0 omitted). */
export type Counts = Record<string, Partial<Record<TaskState, number>>>;

export interface RunningTask {
  id: number;
  title: string;
  persona: string;
  status: TaskState;
  attempt: number;
  progress: number | null;
  progressMessage: string | null;
  assignedAgentId: string | null;
  startedAt: number | null;
}

/** A task in a few words: what a worker is told of its parent and its goal. */
export interface TaskBrief {
  id: number;
  title: string;
  description: string;
  persona: string;
}

/** Where a task sits: its parent and its root (the top of its parent chain; null when it is the root). */
export interface TaskLineage {
  taskId: number;
  rootId: number;
  parent: TaskBrief | null;
  root: TaskBrief | null;
}

/** What ended a lease, from the task's events: reaped, cancelled, completed, released, failed, or taken by a newer claim. */
export type LeaseLossReason = "expired" | "cancelled" | "completed" | "released" | "failed" | "taken" | "unknown";

export interface LeaseLoss {
  reason: LeaseLossReason;
  /** The task's state now. */
  status: TaskState;
  /** When, and by whom, the lease ended (null when no event says). */
  at: number | null;
  by: string | null;
}

/** completeOnce: a completion, or the same token again after one (a retried call whose answer was lost). */
export type CompleteOnceResult = CompleteResult | { ok: false; code: "ALREADY_COMPLETED"; result: Json | null; childIds: number[] };

export interface TaskService {
  enqueue(params: EnqueueParams): Promise<EnqueueResult>;
  /** Ready tasks of a persona, best first, without claiming them. */
  listAvailable(params: { persona: string; now: number; limit?: number }): Promise<TaskRecord[]>;
  claim(params: ClaimParams): Promise<ClaimedTask[]>;
  /** Records adapter starts in one transaction, each fenced by its lease; results in input order. */
  start(params: { starts: LeaseRef[]; now: number }): Promise<LeaseResult[]>;
  progressIfLeased(params: ProgressParams): Promise<LeaseResult>;
  /**
   * The one write path for finished attempts: completions, failures and releases, each
   * fenced by its lease, in one transaction; results in input order. No task twice.
   */
  settle(params: { settlements: Settlement[]; now: number; invalid?: InvalidOutput }): Promise<SettlementResult[]>;
  /** settle() of one start, completion, failure or release (src/store/one-task.ts); a bad completion is refused. */
  startIfLeased(params: LeaseRef & { now: number }): Promise<LeaseResult>;
  completeIfLeased(params: CompleteParams): Promise<CompleteResult>;
  failIfLeased(params: FailParams): Promise<FailResult>;
  releaseIfLeased(params: ReleaseParams): Promise<SettlementResult>;
  cancel(params: { taskId: number; reason?: string; by?: string; now: number }): Promise<{ cancelled: number[]; blocked: number[] }>;
  retry(params: { taskId: number; by?: string; now: number }): Promise<{ status: TaskState; unblocked: number[] }>;
  addDependency(params: { taskId: number; dependsOn: number; by?: string; now: number }): Promise<{ status: TaskState }>;
  get(params: { taskId: number; eventLimit?: number }): Promise<TaskDetail>;
  list(params: ListTasksParams): Promise<TaskRecord[]>;
  events(params: { taskId: number; afterId?: number; limit?: number }): Promise<TaskEvent[]>;
  counts(params?: CountsParams): Promise<Counts>;
  running(params?: { persona?: string; limit?: number }): Promise<RunningTask[]>;
  /** Earliest run_at of a pending task after `now`, or null: when to wake up next. */
  nextRunAt(params: { persona?: string; now: number }): Promise<number | null>;
  /** claim() of one named task (src/store/one-task.ts): the task if it was ready now (pending, run_at passed), else null. */
  claimById(params: { taskId: number; agentId: string; leaseMs?: number; now: number }): Promise<ClaimedTask | null>;
  /** Parent and root of each task, in input order; unknown ids are left out. */
  lineage(params: { taskIds: number[] }): Promise<TaskLineage[]>;
  /**
   * completeIfLeased that can be asked twice: the token that completed a task, given
   * again, answers ALREADY_COMPLETED with the recorded result instead of LEASE_LOST.
   */
  completeOnce(params: CompleteParams): Promise<CompleteOnceResult>;
  /** Why a lease on the task is gone (for LEASE_LOST): from the events after `agentId`'s last claim. */
  leaseLoss(params: { taskId: number; agentId?: string | null }): Promise<LeaseLoss>;
  /** Characters [offset, offset + limit) of the task's result as JSON text, and its full length. */
  resultPage(params: { taskId: number; offset: number; limit: number }): Promise<{ status: TaskState; totalChars: number; text: string }>;
  /**
   * A goal and its plan, atomically: `goal` is enqueued, `tasks` become its children,
   * and the goal waits for all of them (it runs last). Validated whole like enqueue.
   */
  enqueueGoal(params: { goal: TaskInput; tasks: TaskInput[]; parentId?: number | null; createdBy?: string | null; now: number }): Promise<EnqueueResult & { goalId: number }>;
  /** Of these leases, the ones no longer current and the task's status now (cancelled, reaped, taken …). A read. */
  leasesGone(params: { leases: LeaseRef[] }): Promise<Array<{ taskId: number; leaseToken: string; status: TaskState | null }>>;
  /**
   * Leases the reaper took from `agentId` while their attempts were running here (the
   * holder was cut off or frozen, not killed by its task): each whose token is still its
   * task's last reaped lease, on a task not finished, is taken off the task's lost leases
   * (src/store/lost-leases.ts). Fenced by token: any other lease changes nothing. Answers
   * the leases given back.
   */
  giveBack(params: { leases: LeaseRef[]; agentId: string; now: number }): Promise<{ given: LeaseRef[] }>;
  /** The ready task a claim of `persona` would take next, and since when it is ready (epoch ms); null when none is. A read. */
  oldestReady(params: { persona: string; now: number }): Promise<{ taskId: number; readySince: number } | null>;
}

export interface AgentService {
  register(params: RegisterAgentParams): Promise<AgentRecord>;
  /** Renews every lease the agent holds (or the ones named) in one statement. */
  heartbeat(params: HeartbeatParams): Promise<HeartbeatResult>;
  /** Releases every lease the agent holds, without counting the attempts. */
  deregister(params: { agentId: string; now: number }): Promise<{ released: number[] }>;
  list(params?: { includeInactive?: boolean }): Promise<AgentRecord[]>;
  get(params: { agentId: string }): Promise<AgentRecord | null>;
  expireStale(params: { now: number }): Promise<string[]>;
}

export interface PersonaService {
  /** Upserts the given personas; marks the others whose file is gone (but keeps them). */
  sync(params: { personas: PersonaUpsert[]; now: number; sourceDir?: string }): Promise<void>;
  /** A persona, retired or not (see `retiredAt`). */
  get(params: { id: string }): Promise<PersonaRecord | null>;
  /** Personas in service, by id; retired ones too with `includeRetired`. */
  list(params?: { includeRetired?: boolean }): Promise<PersonaRecord[]>;
  /**
   * Retires a persona (`retired: true`) or returns it to service: a retired persona
   * keeps its row and its tasks, is left out of `list`, and new tasks naming it are
   * refused. A later sync of its file does not bring it back. Throws
   * PERSONA_NOT_FOUND (with a "did you mean") for an unknown id.
   */
  retire(params: { id: string; retired: boolean; now: number }): Promise<PersonaRecord>;
}

export interface MaintenanceService {
  reapExpired(params: ReapParams): Promise<ReapResult>;
  /** Deletes terminal tasks (and their events) finished before `before`. */
  prune(params: { before: number }): Promise<{ tasks: number; events: number }>;
  integrityCheck(): Promise<string>;
}

export interface Store {
  readonly tasks: TaskService;
  readonly agents: AgentService;
  readonly personas: PersonaService;
  readonly maintenance: MaintenanceService;
  /** Usage, budgets, provider pauses, breakers, rate limits (src/store/economics.ts). */
  readonly economics: EconomicsService;
  /** Approvals and questions parked for a person. */
  readonly humans: HumanService;
  /** Recurring tasks from cron expressions. */
  readonly schedules: ScheduleService;
  /** Why a task is not running. */
  readonly why: WhyService;
  /** Dashboard reads (src/ui): task pages behind a cursor, throughput; optional, the dashboard falls back without it. */
  readonly ui?: UiReadService;
  /** In-process notifications, emitted after each commit. */
  readonly events: StoreEventBus;
  /** True when another connection (process) has written since the last call. Cheap. */
  hasExternalChanges(): Promise<boolean>;
  /**
   * Calls `onChange` soon after another process may have written (a file watch, for
   * SQLite on the database's folder), so a waiting reader need not poll to react
   * within milliseconds. A hint only: it may fire for the store's own writes, more
   * than once for one write (again a few ms later, in case the write was not yet
   * visible at the first call), or not at all (in-memory databases, file systems
   * without change notification), so
   * callers confirm with hasExternalChanges() and keep a slower poll. Returns a
   * function that stops the watch; close() stops every watch.
   */
  watchExternalChanges(onChange: () => void): () => void;
  /**
   * PostgreSQL: the database server's clock minus this host's (config.clockOffsetMs
   * included), and the round trip it was measured over, in ms; systemClock follows
   * the server's clock while the store is open. Absent on SQLite (one machine, one clock).
   */
  clockOffset?(): { hostOffsetMs: number; rttMs: number };
  close(): Promise<void>;
}

export interface StoreOptions {
  /** Path of the database file, or ":memory:". */
  path: string;
  /** "NORMAL" (default) or "FULL". */
  synchronous?: "NORMAL" | "FULL";
  /** How long a writer waits for the lock before SQLITE_BUSY, in ms. Default 5000. */
  busyTimeoutMs?: number;
  /** Largest payload or result, in bytes of JSON. Default 1 MiB. */
  maxPayloadBytes?: number;
  /** Open read-only (status commands). */
  readonly?: boolean;
  /** Directory of NNNN_name.sql files; defaults to the package's migrations/. */
  migrationsDir?: string;
  /**
   * The monotonic clock (ms, any origin) on which this process judges other holders'
   * liveness: a lease is dead once its renewal stamp stood still for leaseMs of it.
   * Default performance.now; tests pass their manual clock.
   */
  monotonic?: () => number;
  /** Called when a transient SQLITE_BUSY is retried. */
  onBusyRetry?: (attempt: number) => void;
  /** Called with the duration of each write transaction, in ms. */
  onTransaction?: (name: string, durationMs: number) => void;
}

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
  nextFireAt: number;
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
  nextFireAt: number;
  by: string;
  now: number;
}

export interface ScheduleService {
  /** Adds or replaces schedules (a replaced schedule keeps its cursor unless its cron or zone changed). */
  upsert(params: { schedules: ScheduleUpsert[]; now: number }): Promise<ScheduleRecord[]>;
  list(): Promise<ScheduleRecord[]>;
  get(params: { id: string }): Promise<ScheduleRecord | null>;
  remove(params: { id: string; now: number }): Promise<void>;
  /** paused: true stops firing; false resumes from `nextFireAt` (fires missed while paused are not run). */
  pause(params: { id: string; paused: boolean; nextFireAt?: number; now: number }): Promise<ScheduleRecord>;
  /** Schedules not paused whose next_fire_at <= now. */
  due(params: { now: number; limit?: number }): Promise<ScheduleRecord[]>;
  /** Takes one fire (compare-and-set on next_fire_at) and enqueues its tasks; fired: false when another process took it. */
  fire(params: FireParams): Promise<{ fired: boolean; taskIds: number[] }>;
  /** Earliest next_fire_at of a schedule not paused, or null. */
  nextFireAt(): Promise<number | null>;
}

// ---- roster why (issue 17) -------------------------------------------------------------

/**
 * One reason a task is not running, with a stable code. Codes so far: running,
 * finished, failed, cancelled, dependencies_unmet, blocked_by, scheduled_later,
 * awaiting_approval, awaiting_input, persona_at_limit, no_supervisor,
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
  /** Every reason the task is not running now (DESIGN, "Task states"); TASK_NOT_FOUND for an unknown id. */
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
