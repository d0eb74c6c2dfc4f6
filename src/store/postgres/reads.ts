import { RosterError } from "../../errors.js";
import {
  EVENT_LIMIT_DEFAULT,
  LIST_LIMIT_DEFAULT,
  listStatuses,
  taskNotFound,
  toAgentRecord,
  toCounts,
  toPersonaRecord,
  toRunningTask,
  toTaskDetail,
  toTaskEvent,
  toTaskRecord,
  type AgentRow,
  type BriefRow,
  type EventRow,
  type PersonaRow,
  type RunningRow,
  type TaskRow,
} from "../rows.js";
import type { AgentRecord, Counts, ListTasksParams, PersonaRecord, RunningTask, TaskDetail, TaskEvent, TaskRecord, TaskState } from "../types.js";
import type { Tx } from "./database.js";

type Q = Pick<Tx, "rows" | "one">;

/** The columns of a TaskRecord (src/store/rows.ts maps them); JSON stays text. */
export const PG_TASK_COLUMNS = `t.id, t.title, t.description, t.persona_id, t.payload, t.parent_id, t.root_id, t.created_by,
  t.priority, t.retry_policy, t.timeout_ms, t.idempotency_key, t.created_at,
  s.status, s.unmet_deps, s.run_at, s.ready_at, s.attempts, s.max_attempts, s.assigned_agent_id, s.lease_token,
  s.lease_ms, s.lease_expires_at, s.claimed_at, s.started_at, s.finished_at, s.progress, s.progress_message,
  s.result, s.last_error, s.updated_at,
  (SELECT json_agg(d.depends_on)::text FROM task_dependencies d WHERE d.task_id = t.id) AS depends_on`;

const FROM = "FROM tasks t JOIN task_status s ON s.task_id = t.id";

/** The ready task a claim would take next: one seek into the claim index. Params: $1 persona, $2 now. */
export const PG_OLDEST_READY_SQL = `
  SELECT task_id, greatest(run_at, coalesce(ready_at, run_at)) AS ready_since FROM task_status
  WHERE status = 'pending' AND persona_id = $1 AND run_at <= $2::bigint
  ORDER BY priority DESC, run_at, task_id LIMIT 1`;

/** Earliest future run_at of a pending task (the task_status_run_at index). */
export const PG_NEXT_RUN_SQL = "SELECT min(run_at) AS t FROM task_status WHERE status = 'pending' AND run_at > $1::bigint AND ($2::text IS NULL OR persona_id = $2)";

/** Leased tasks, from the partial lease index. */
export const PG_RUNNING_SQL = `
  SELECT t.id, t.title, s.persona_id, s.status, s.attempts, s.progress, s.progress_message, s.assigned_agent_id, s.started_at
  FROM task_status s JOIN tasks t ON t.id = s.task_id
  WHERE s.status IN ('claimed','in_progress') AND ($1::text IS NULL OR s.persona_id = $1)
  ORDER BY s.task_id LIMIT $2`;

/** Every lease held and its renewal stamp, for the liveness judge. */
export const PG_OBSERVE_LEASES_SQL = `
  SELECT task_id, lease_token, lease_expires_at, lease_ms FROM task_status
  WHERE status IN ('claimed','in_progress') ORDER BY lease_expires_at`;

export const PG_OBSERVE_AGENTS_SQL = "SELECT id, last_heartbeat, heartbeat_timeout_ms FROM agents WHERE status = 'active'";

/** A task id as the database can take it: an integer, or TASK_NOT_FOUND naming it (never a driver error). */
export function assertTaskId(taskId: unknown, field = "taskId"): number {
  if (typeof taskId !== "number" || !Number.isSafeInteger(taskId)) {
    throw new RosterError("VALIDATION", `${field}: must be an integer task id, got ${JSON.stringify(taskId)}`, { details: { field } });
  }
  return taskId;
}

export async function getTask(q: Q, taskId: number, eventLimit = EVENT_LIMIT_DEFAULT): Promise<TaskDetail> {
  const row = await q.one<TaskRow>(`SELECT ${PG_TASK_COLUMNS} ${FROM} WHERE t.id = $1`, [taskId]);
  if (row === undefined) throw taskNotFound(taskId);
  return toTaskDetail(row, {
    dependencies: await q.rows<BriefRow & { result: string | null }>(
      `SELECT t.id, t.title, t.persona_id, s.status, s.result FROM task_dependencies d
       JOIN tasks t ON t.id = d.depends_on JOIN task_status s ON s.task_id = t.id WHERE d.task_id = $1 ORDER BY t.id`,
      [taskId],
    ),
    dependents: await q.rows<BriefRow>(
      `SELECT t.id, t.title, t.persona_id, s.status FROM task_dependencies d
       JOIN tasks t ON t.id = d.task_id JOIN task_status s ON s.task_id = t.id WHERE d.depends_on = $1 ORDER BY t.id`,
      [taskId],
    ),
    children: await q.rows<BriefRow>(`SELECT t.id, t.title, t.persona_id, s.status ${FROM} WHERE t.parent_id = $1 ORDER BY t.id`, [taskId]),
    events: await q.rows<EventRow>("SELECT * FROM (SELECT * FROM task_events WHERE task_id = $1 ORDER BY id DESC LIMIT $2) e ORDER BY id", [taskId, eventLimit]),
  });
}

export async function listTasks(q: Q, params: ListTasksParams): Promise<TaskRecord[]> {
  const statuses = listStatuses(params);
  const limit = params.limit === undefined ? LIST_LIMIT_DEFAULT : params.limit === 0 ? null : params.limit;
  const rows = await q.rows<TaskRow>(
    `SELECT ${PG_TASK_COLUMNS} ${FROM}
     WHERE t.id > $1
       AND ($2::text[] IS NULL OR s.status = ANY($2::text[]))
       AND ($3::text IS NULL OR t.persona_id = $3)
       AND ($4::bigint IS NULL OR t.parent_id = $4)
       AND ($5::bigint IS NULL OR t.root_id = $5 OR t.id = $5)
     ORDER BY t.id ${params.newestFirst === true ? "DESC" : ""}
     LIMIT $6`,
    [params.afterId ?? 0, statuses, params.persona ?? null, params.parentId ?? null, params.rootId ?? null, limit],
  );
  return rows.map(toTaskRecord);
}

export async function availableTasks(q: Q, params: { persona: string; now: number; limit?: number | undefined }): Promise<TaskRecord[]> {
  const rows = await q.rows<TaskRow>(
    `SELECT ${PG_TASK_COLUMNS} ${FROM}
     WHERE s.task_id IN (
       SELECT task_id FROM task_status WHERE status = 'pending' AND persona_id = $1 AND run_at <= $2::bigint
       ORDER BY priority DESC, run_at, task_id LIMIT $3)
     ORDER BY s.priority DESC, s.run_at, s.task_id`,
    [params.persona, params.now, params.limit ?? LIST_LIMIT_DEFAULT],
  );
  return rows.map(toTaskRecord);
}

export async function taskEvents(q: Q, taskId: number, afterId = 0, limit = 1000): Promise<TaskEvent[]> {
  if ((await q.one("SELECT 1 FROM tasks WHERE id = $1", [taskId])) === undefined) throw taskNotFound(taskId);
  const rows = await q.rows<EventRow>("SELECT * FROM task_events WHERE task_id = $1 AND id > $2 ORDER BY id LIMIT $3", [taskId, afterId, limit === 0 ? null : limit]);
  return rows.map(toTaskEvent);
}

export async function counts(q: Q, rootId?: number): Promise<Counts> {
  const rows =
    rootId === undefined
      ? await q.rows<{ persona_id: string; status: TaskState; n: number }>("SELECT persona_id, status, count(*) AS n FROM task_status GROUP BY persona_id, status")
      : await q.rows<{ persona_id: string; status: TaskState; n: number }>(
          `SELECT s.persona_id, s.status, count(*) AS n ${FROM} WHERE t.id = $1 OR t.root_id = $1 GROUP BY s.persona_id, s.status`,
          [rootId],
        );
  return toCounts(rows);
}

export async function running(q: Q, params: { persona?: string | undefined; limit?: number | undefined } = {}): Promise<RunningTask[]> {
  return (await q.rows<RunningRow>(PG_RUNNING_SQL, [params.persona ?? null, params.limit ?? 1000])).map(toRunningTask);
}

export async function oldestReady(q: Q, params: { persona: string; now: number }): Promise<{ taskId: number; readySince: number } | null> {
  const row = await q.one<{ task_id: number; ready_since: number }>(PG_OLDEST_READY_SQL, [params.persona, params.now]);
  return row === undefined ? null : { taskId: row.task_id, readySince: row.ready_since };
}

export async function nextRunAt(q: Q, params: { persona?: string | undefined; now: number }): Promise<number | null> {
  return (await q.one<{ t: number | null }>(PG_NEXT_RUN_SQL, [params.now, params.persona ?? null]))?.t ?? null;
}

export async function leasesGone(q: Q, leases: ReadonlyArray<{ taskId: number; leaseToken: string }>): Promise<Array<{ taskId: number; leaseToken: string; status: TaskState | null }>> {
  if (leases.length === 0) return [];
  const rows = await q.rows<{ task_id: number; lease_token: string; status: TaskState | null }>(
    `SELECT b.id AS task_id, b.token AS lease_token, s.status
     FROM unnest($1::bigint[], $2::text[]) AS b(id, token) LEFT JOIN task_status s ON s.task_id = b.id
     WHERE s.lease_token IS DISTINCT FROM b.token OR s.status NOT IN ('claimed','in_progress')`,
    [leases.map((l) => l.taskId), leases.map((l) => l.leaseToken)],
  );
  return rows.map((r) => ({ taskId: r.task_id, leaseToken: r.lease_token, status: r.status }));
}

const AGENT_HELD = "(SELECT count(*) FROM task_status s WHERE s.assigned_agent_id = a.id AND s.status IN ('claimed','in_progress')) AS held";

export async function listAgents(q: Q, includeInactive: boolean): Promise<AgentRecord[]> {
  const rows = await q.rows<AgentRow>(`SELECT a.*, ${AGENT_HELD} FROM agents a ${includeInactive ? "" : "WHERE a.status = 'active'"} ORDER BY a.registered_at, a.id`);
  return rows.map(toAgentRecord);
}

export async function getAgent(q: Q, agentId: string): Promise<AgentRecord | null> {
  const row = await q.one<AgentRow>(`SELECT a.*, ${AGENT_HELD} FROM agents a WHERE a.id = $1`, [agentId]);
  return row === undefined ? null : toAgentRecord(row);
}

const PERSONA_COLUMNS = "id, name, definition, config, source_path, file_present::int AS file_present, created_at, updated_at, retired_at";

export async function getPersona(q: Q, id: string): Promise<PersonaRecord | null> {
  const row = await q.one<PersonaRow>(`SELECT ${PERSONA_COLUMNS} FROM personas WHERE id = $1`, [id]);
  return row === undefined ? null : toPersonaRecord(row);
}

export async function listPersonas(q: Q, includeRetired: boolean): Promise<PersonaRecord[]> {
  const rows = await q.rows<PersonaRow>(`SELECT ${PERSONA_COLUMNS} FROM personas ${includeRetired ? "" : "WHERE retired_at IS NULL"} ORDER BY id`);
  return rows.map(toPersonaRecord);
}
