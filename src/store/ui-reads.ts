/**
 * The dashboard's reads (store.ui) as both stores answer them, without the database:
 * the rows each engine's SQL returns (src/store/sqlite/ui-reads.ts,
 * src/store/postgres/ui-reads.ts) and their one mapping to the shapes src/ui serves, so
 * a page, a throughput bucket or a full key cannot differ between SQLite and PostgreSQL.
 */
import type { TaskState, UiFullKey, UiTaskPageParams, UiTaskRow, UiThroughputBucket } from "./types.js";

/** A task summary row of a dashboard page (no payload or result); depends_on is a JSON array as text. */
export interface PageRow {
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

/** The page's filters as the SQL takes them: the statuses (null: any) and the title search, lower-cased (null: none). */
export function pageFilters(params: UiTaskPageParams): { statuses: TaskState[] | null; query: string | null } {
  return {
    statuses: params.status === undefined ? null : Array.isArray(params.status) ? params.status : [params.status],
    query: params.query === undefined || params.query === "" ? null : params.query.toLowerCase(),
  };
}

export function toUiTaskRow(r: PageRow): UiTaskRow {
  return {
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
  };
}

/** Completions, failures and retries in one bucket, numbered from `since`. */
export interface ThroughputRow {
  bucket: number;
  completed: number;
  failed: number;
  retried: number;
}

export function toThroughput(rows: readonly ThroughputRow[], params: { since: number; bucketMs: number }): UiThroughputBucket[] {
  return rows.map((r) => ({ at: params.since + r.bucket * params.bucketMs, completed: r.completed, failed: r.failed, retried: r.retried }));
}

/** A concurrency key at its limit; holders is a JSON array of task ids as text. */
export interface FullKeyRow {
  key: string;
  running: number;
  max_running: number;
  holders: string;
  pending: number;
}

export function toFullKey(r: FullKeyRow): UiFullKey {
  return { key: r.key, running: r.running, limit: r.max_running, holders: JSON.parse(r.holders) as number[], pending: r.pending };
}
