import type { TaskState, UiFullKey, UiTaskPageParams, UiTaskRow, UiThroughputBucket } from "../types.js";
import type { Tx } from "./database.js";

type Q = Pick<Tx, "rows" | "one">;

/**
 * What the dashboard (src/ui) reads beside the Store's own reads, on PostgreSQL: the twin
 * of src/store/sqlite/ui-reads.ts, answering the same shapes. A page of task summaries
 * newest first behind a cursor (a walk down the primary key; a goal's subtree from
 * tasks_root), completions and failures per time bucket from the audit trail (a range
 * over task_events_at), and the concurrency keys at their limit (migrations/postgres/0005:
 * the running count comes from the leased rows of the key through task_status_key_running).
 */
const PAGE_SQL = `
  SELECT t.id, t.title, t.persona_id, t.parent_id, t.root_id, t.created_at,
    s.status, s.attempts, s.max_attempts, s.progress, s.progress_message, s.updated_at,
    (s.last_error::jsonb) ->> 'code' AS error_code,
    (SELECT coalesce(json_agg(d.depends_on), '[]'::json)::text FROM task_dependencies d WHERE d.task_id = t.id) AS depends_on
  FROM tasks t JOIN task_status s ON s.task_id = t.id
  WHERE t.id < $1::bigint
    AND ($2::bigint IS NULL OR t.id = $2::bigint OR t.root_id = $2::bigint)
    AND ($3::text[] IS NULL OR s.status = ANY($3::text[]))
    AND ($4::text IS NULL OR t.persona_id = $4::text)
    AND (NOT $5::boolean OR t.parent_id IS NULL)
    AND ($6::text IS NULL OR strpos(lower(t.title), $6::text) > 0)
  ORDER BY t.id DESC
  LIMIT $7`;

const THROUGHPUT_SQL = `
  SELECT (at - $1::bigint) / $2::bigint AS bucket,
    count(*) FILTER (WHERE type = 'task:completed') AS completed,
    count(*) FILTER (WHERE type = 'task:failed') AS failed,
    count(*) FILTER (WHERE type = 'task:retrying') AS retried
  FROM task_events
  WHERE at >= $1::bigint AND type IN ('task:completed', 'task:failed', 'task:retrying')
  GROUP BY bucket ORDER BY bucket`;

const FULL_KEYS_SQL = `
  SELECT k.key, k.max_running, r.running, r.holders,
    (SELECT count(*) FROM task_status p WHERE p.concurrency_key = k.key AND p.status = 'pending') AS pending
  FROM concurrency_keys k
  CROSS JOIN LATERAL (
    SELECT count(*) AS running, coalesce(json_agg(s.task_id ORDER BY s.task_id), '[]'::json)::text AS holders
    FROM task_status s WHERE s.concurrency_key = k.key AND s.status IN ('claimed','in_progress')) r
  WHERE r.running >= k.max_running
  ORDER BY k.key
  LIMIT $1`;

interface PageRow {
  id: number;
  title: string;
  persona_id: string;
  parent_id: number | null;
  root_id: number | null;
  status: TaskState;
  attempts: number;
  max_attempts: number;
  progress: number | null;
  progress_message: string | null;
  created_at: number;
  updated_at: number;
  error_code: string | null;
  depends_on: string;
}

export async function taskPage(q: Q, params: UiTaskPageParams): Promise<UiTaskRow[]> {
  const statuses = params.status === undefined ? null : Array.isArray(params.status) ? params.status : [params.status];
  const query = params.query === undefined || params.query === "" ? null : params.query.toLowerCase();
  const rows = await q.rows<PageRow>(PAGE_SQL, [params.beforeId ?? Number.MAX_SAFE_INTEGER, params.rootId ?? null, statuses, params.persona ?? null, params.topLevel === true, query, params.limit]);
  return rows.map((r) => ({
    id: r.id,
    title: r.title,
    persona: r.persona_id,
    parentId: r.parent_id,
    rootId: r.root_id ?? r.id,
    status: r.status,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    progress: r.progress,
    progressMessage: r.progress_message,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    errorCode: r.error_code,
    dependsOn: JSON.parse(r.depends_on) as number[],
  }));
}

export async function throughput(q: Q, params: { since: number; bucketMs: number }): Promise<UiThroughputBucket[]> {
  const rows = await q.rows<{ bucket: number; completed: number; failed: number; retried: number }>(THROUGHPUT_SQL, [params.since, params.bucketMs]);
  return rows.map((r) => ({ at: params.since + r.bucket * params.bucketMs, completed: r.completed, failed: r.failed, retried: r.retried }));
}

export async function fullKeys(q: Q, params: { limit: number }): Promise<UiFullKey[]> {
  const rows = await q.rows<{ key: string; max_running: number; running: number; holders: string; pending: number }>(FULL_KEYS_SQL, [params.limit]);
  return rows.map((r) => ({ key: r.key, running: r.running, limit: r.max_running, holders: JSON.parse(r.holders) as number[], pending: r.pending }));
}
