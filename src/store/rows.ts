/**
 * Row shapes as both engines return them (SQLite's better-sqlite3 and PostgreSQL's pg,
 * JSON kept as text, times as integers), and their one mapping to the store's types, so a
 * record cannot differ between the two stores (docs/ARCHITECTURE.md, "PostgreSQL and beyond
 * one machine"). The SQL that reads them stays in each engine's folder.
 */
import { RosterError, type ErrorObject } from "../errors.js";
import type { RetryPolicy } from "../policy/retry.js";
import type { CostRow, UsageRecord } from "./economics.js";
import {
  TASK_STATES,
  type AgentRecord,
  type Counts,
  type Json,
  type ListTasksParams,
  type PersonaRecord,
  type RunningTask,
  type TaskDetail,
  type TaskEvent,
  type TaskRecord,
  type TaskState,
} from "./types.js";

/** Tasks a list returns when the caller names no limit. */
export const LIST_LIMIT_DEFAULT = 100;
/** Latest events a task's detail carries when the caller names no limit. */
export const EVENT_LIMIT_DEFAULT = 50;

export function taskNotFound(taskId: number): RosterError {
  return new RosterError("TASK_NOT_FOUND", `taskId: task ${taskId} does not exist`, { details: { field: "taskId", taskId } });
}

export interface TaskRow {
  id: number;
  title: string;
  description: string;
  persona_id: string;
  payload: string | null;
  parent_id: number | null;
  root_id: number | null;
  created_by: string | null;
  priority: number;
  retry_policy: string;
  timeout_ms: number;
  idempotency_key: string | null;
  created_at: number;
  status: TaskState;
  unmet_deps: number;
  run_at: number;
  ready_at: number | null;
  attempts: number;
  max_attempts: number;
  assigned_agent_id: string | null;
  lease_token: string | null;
  lease_ms: number | null;
  lease_expires_at: number | null;
  claimed_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  progress: number | null;
  progress_message: string | null;
  result: string | null;
  last_error: string | null;
  updated_at: number;
  depends_on: string | null;
}

export function parseJson<T = Json>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

export function toTaskRecord(row: TaskRow): TaskRecord {
  return {
    id: row.id,
    title: row.title,
    description: row.description,
    persona: row.persona_id,
    payload: parseJson(row.payload),
    parentId: row.parent_id,
    rootId: row.root_id ?? row.id,
    createdBy: row.created_by,
    priority: row.priority,
    idempotencyKey: row.idempotency_key,
    createdAt: row.created_at,
    policy: JSON.parse(row.retry_policy) as RetryPolicy,
    timeoutMs: row.timeout_ms,
    status: row.status,
    unmetDependencies: row.unmet_deps,
    runAt: row.run_at,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    assignedAgentId: row.assigned_agent_id,
    leaseExpiresAt: row.lease_expires_at,
    leaseMs: row.lease_ms,
    claimedAt: row.claimed_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    progress: row.progress,
    progressMessage: row.progress_message,
    result: parseJson(row.result),
    error: parseJson<ErrorObject>(row.last_error),
    updatedAt: row.updated_at,
    dependsOn: row.depends_on === null ? [] : (JSON.parse(row.depends_on) as number[]).sort((a, b) => a - b),
  };
}

export interface EventRow {
  id: number;
  task_id: number | null;
  type: string;
  at: number;
  agent_id: string | null;
  attempt: number | null;
  data: string | null;
}

export function toTaskEvent(row: EventRow): TaskEvent {
  return { id: row.id, taskId: row.task_id, type: row.type, at: row.at, agentId: row.agent_id, attempt: row.attempt, data: parseJson(row.data) };
}

export interface AgentRow {
  id: string;
  name: string;
  kind: string;
  persona_id: string | null;
  status: AgentRecord["status"];
  pid: number | null;
  hostname: string | null;
  heartbeat_timeout_ms: number;
  registered_at: number;
  last_heartbeat: number;
  held: number;
}

export function toAgentRecord(row: AgentRow): AgentRecord {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    personaId: row.persona_id,
    status: row.status,
    pid: row.pid,
    hostname: row.hostname,
    heartbeatTimeoutMs: row.heartbeat_timeout_ms,
    registeredAt: row.registered_at,
    lastHeartbeatAt: row.last_heartbeat,
    heldTasks: row.held,
  };
}

export interface PersonaRow {
  id: string;
  name: string;
  definition: string;
  config: string;
  source_path: string | null;
  file_present: number;
  created_at: number;
  updated_at: number;
  retired_at: number | null;
}

export function toPersonaRecord(row: PersonaRow): PersonaRecord {
  return {
    id: row.id,
    name: row.name,
    definition: row.definition,
    config: JSON.parse(row.config) as Record<string, unknown>,
    sourcePath: row.source_path,
    filePresent: row.file_present === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    retiredAt: row.retired_at ?? null,
  };
}

/** The statuses a list filters on, each checked to be a task state (null: any). */
export function listStatuses(params: ListTasksParams): TaskState[] | null {
  const statuses = params.status === undefined ? null : Array.isArray(params.status) ? params.status : [params.status];
  for (const status of statuses ?? []) {
    if (!(TASK_STATES as readonly string[]).includes(status)) {
      throw new RosterError("VALIDATION", `status: "${status}" is not one of ${TASK_STATES.join(", ")}`, { details: { field: "status" } });
    }
  }
  return statuses;
}

/** A neighbour of a task as its detail lists it (dependency, dependent or child). */
export interface BriefRow {
  id: number;
  title: string;
  persona_id: string;
  status: TaskState;
}

function brief(r: BriefRow): { id: number; title: string; persona: string; status: TaskState } {
  return { id: r.id, title: r.title, persona: r.persona_id, status: r.status };
}

/** A task's detail from its row, its neighbours' rows and its latest events. */
export function toTaskDetail(
  row: TaskRow,
  rows: { dependencies: Array<BriefRow & { result: string | null }>; dependents: BriefRow[]; children: BriefRow[]; events: EventRow[] },
): TaskDetail {
  return {
    ...toTaskRecord(row),
    dependencies: rows.dependencies.map((r) => ({ ...brief(r), result: parseJson(r.result) })),
    dependents: rows.dependents.map(brief),
    children: rows.children.map(brief),
    events: rows.events.map(toTaskEvent),
  };
}

/** Counts per persona and state from `(persona_id, status, n)` rows. */
export function toCounts(rows: ReadonlyArray<{ persona_id: string; status: TaskState; n: number }>): Counts {
  const out: Counts = {};
  for (const row of rows) (out[row.persona_id] ??= {})[row.status] = row.n;
  return out;
}

/** A leased task as the running reads return it. */
export interface RunningRow {
  id: number;
  title: string;
  persona_id: string;
  status: TaskState;
  attempts: number;
  progress: number | null;
  progress_message: string | null;
  assigned_agent_id: string | null;
  started_at: number | null;
}

export function toRunningTask(r: RunningRow): RunningTask {
  return {
    id: r.id,
    title: r.title,
    persona: r.persona_id,
    status: r.status,
    attempt: r.attempts,
    progress: r.progress,
    progressMessage: r.progress_message,
    assignedAgentId: r.assigned_agent_id,
    startedAt: r.started_at,
  };
}

/** A cost aggregate as both stores return it: the key as text, USD rounded to a millionth. */
export function costRow(row: CostRow & { cost_usd?: number }): CostRow {
  const { cost_usd, ...rest } = row;
  return { ...rest, key: String(rest.key), costUsd: Math.round((cost_usd ?? 0) * 1e6) / 1e6 };
}

/** A usage row as both stores read it (the same columns in each schema). */
export interface UsageRow {
  task_id: number;
  root_id: number;
  attempt: number;
  agent_id: string | null;
  persona_id: string;
  provider: string;
  model: string | null;
  outcome: string;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  reasoning_tokens: number;
  turns: number | null;
  duration_ms: number | null;
  cost_usd: number | null;
  cost_source: UsageRecord["costSource"];
  at: number;
}

export function toUsageRecord(r: UsageRow): UsageRecord {
  return {
    taskId: r.task_id,
    rootId: r.root_id,
    attempt: r.attempt,
    agentId: r.agent_id,
    persona: r.persona_id,
    provider: r.provider,
    model: r.model,
    outcome: r.outcome,
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    cacheReadTokens: r.cache_read_tokens,
    cacheWriteTokens: r.cache_write_tokens,
    reasoningTokens: r.reasoning_tokens,
    turns: r.turns,
    durationMs: r.duration_ms,
    costUsd: r.cost_usd,
    costSource: r.cost_source,
    at: r.at,
  };
}
