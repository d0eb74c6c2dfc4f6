import type { ErrorObject } from "../../errors.js";
import type { RetryPolicy } from "../../policy/retry.js";
import type { AgentRecord, Json, PersonaRecord, TaskEvent, TaskRecord, TaskState } from "../types.js";

/** Row shapes as SQLite returns them, and their mapping to the store's types. */
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

export const TASK_COLUMNS = `t.id, t.title, t.description, t.persona_id, t.payload, t.parent_id, t.root_id, t.created_by,
  t.priority, t.retry_policy, t.timeout_ms, t.idempotency_key, t.created_at,
  s.status, s.unmet_deps, s.run_at, s.ready_at, s.attempts, s.max_attempts, s.assigned_agent_id, s.lease_token,
  s.lease_ms, s.lease_expires_at, s.claimed_at, s.started_at, s.finished_at, s.progress, s.progress_message,
  s.result, s.last_error, s.updated_at,
  (SELECT json_group_array(d.depends_on) FROM task_dependencies d WHERE d.task_id = t.id) AS depends_on`;

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
