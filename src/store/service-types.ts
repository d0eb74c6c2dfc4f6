/**
 * The Store's task, agent, persona and maintenance services (src/store/types.ts assembles
 * them into Store and re-exports everything here), with the params and answers that only
 * they use: heartbeats, agents, the reaper, counts and running tasks, lineage, lease losses.
 */
import type {
  ClaimParams,
  ClaimedTask,
  CompleteParams,
  CompleteResult,
  EnqueueParams,
  EnqueueResult,
  FailParams,
  FailResult,
  InvalidOutput,
  Json,
  LeaseRef,
  LeaseResult,
  ListTasksParams,
  PersonaRecord,
  PersonaUpsert,
  ProgressParams,
  ReleaseParams,
  Settlement,
  SettlementResult,
  TaskDetail,
  TaskEvent,
  TaskInput,
  TaskRecord,
  TaskState,
} from "./types.js";

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

/** What tasks.settleAndClaim recorded and claimed. */
export interface SettleAndClaimResult {
  results: SettlementResult[];
  /** One list per claim asked, in order. */
  claimed: ClaimedTask[][];
}

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
  /**
   * settle(), then claim() of each of `claims`, in one transaction: the supervisor's cycle, its
   * finished attempts recorded and their room claimed again for one commit instead of two. The
   * claims come after the settlements, so they see the room and the gates those recorded. It
   * fails whole: a settlement or a claim that throws writes nothing (the caller may then settle
   * alone). `claimed[i]` answers `claims[i]`. Only an
   * engine whose one transaction costs less than two offers it (SQLite); PostgreSQL does not: a
   * claim locks its persona first (docs/ARCHITECTURE.md rule 15), a settlement its task rows
   * first, and one transaction doing both would lock in the other order than another host's claim.
   */
  settleAndClaim?(params: { settlements: Settlement[]; now: number; claims: ClaimParams[] }): Promise<SettleAndClaimResult>;
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
  /**
   * Releases every lease the agent holds, without counting the attempts. `sessionEnded`: its
   * MCP session ended holding them, so each is also a lost lease (src/store/session-end.ts):
   * the one that reaches the task's bound fails it (`AGENT_LEFT`, listed in `failed`).
   */
  deregister(params: { agentId: string; now: number; sessionEnded?: boolean }): Promise<{ released: number[]; failed: number[] }>;
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
  /** Who this database is, for what it names outside itself (the git work of agent attempts: src/workspace/owner.ts). */
  identity(): Promise<DatabaseIdentity>;
}

/** A database's identity (table roster_meta), fixed when it is made, carried by `roster db copy`. */
export interface DatabaseIdentity {
  /** Random, a letter then lowercase letters and digits. */
  id: string;
  /** Tasks up to this id were created before databases had an identity (0 for a database made since). */
  legacyTaskIdsUpTo: number;
}
