import type { UiFullKey, UiTaskPageParams, UiTaskRow, UiThroughputBucket } from "../types.js";
import { pageFilters, toFullKey, toThroughput, toUiTaskRow, type FullKeyRow, type PageRow, type ThroughputRow } from "../ui-reads.js";
import type { Tx } from "./database.js";

type Q = Pick<Tx, "rows" | "one">;

/**
 * What the dashboard (src/ui) reads beside the Store's own reads, on PostgreSQL: as
 * src/store/sqlite/ui-reads.ts, mapped to the same shapes by src/store/ui-reads.ts. A page of task summaries
 * newest first behind a cursor (a walk down the primary key; a goal's subtree from
 * tasks_root), completions and failures per time bucket from the audit trail (a range
 * over task_events_at, a BRIN index since migrations/postgres/0012), and the concurrency keys at their limit (migrations/postgres/0005:
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

export async function taskPage(q: Q, params: UiTaskPageParams): Promise<UiTaskRow[]> {
  const { statuses, query } = pageFilters(params);
  const rows = await q.rows<PageRow>(PAGE_SQL, [params.beforeId ?? Number.MAX_SAFE_INTEGER, params.rootId ?? null, statuses, params.persona ?? null, params.topLevel === true, query, params.limit]);
  return rows.map(toUiTaskRow);
}

export async function throughput(q: Q, params: { since: number; bucketMs: number }): Promise<UiThroughputBucket[]> {
  return toThroughput(await q.rows<ThroughputRow>(THROUGHPUT_SQL, [params.since, params.bucketMs]), params);
}

export async function fullKeys(q: Q, params: { limit: number }): Promise<UiFullKey[]> {
  return (await q.rows<FullKeyRow>(FULL_KEYS_SQL, [params.limit])).map(toFullKey);
}
