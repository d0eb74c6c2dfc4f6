import type { UiFullKey, UiTaskPageParams, UiTaskRow, UiThroughputBucket } from "../types.js";
import { pageFilters, toFullKey, toThroughput, toUiTaskRow, type FullKeyRow, type PageRow, type ThroughputRow } from "../ui-reads.js";
import type { Db } from "./database.js";

/**
 * What the dashboard (src/ui) reads beside the Store's own reads: a page of task
 * summaries newest first behind a cursor (no payloads or results, so a page of a
 * 100,000-task database is one short seek down the primary key), and completions
 * and failures per time bucket from the audit trail (a range over task_events_at), and
 * the concurrency keys at their limit (the partial index concurrency_keys_full, migration
 * 0006; the tasks of each full key are found through task_keys). Statements prepared
 * once; each runs as one read.
 */
export class UiReads {
  private readonly pageStmt;
  private readonly pageRootStmt;
  private readonly throughputStmt;
  private readonly fullKeysStmt;

  constructor(db: Db) {
    // A goal's subtree is read from the root index (tasks_root) outward, not by a walk down
    // the primary key, so a goal page costs its own size whatever the database holds.
    const page = (byRoot: boolean) =>
      db.prepare(`
      SELECT t.id, t.title, t.persona_id, t.parent_id, t.root_id, t.created_at,
        s.status, s.attempts, s.max_attempts, s.progress, s.progress_message, s.updated_at,
        json_extract(s.last_error, '$.code') AS error_code,
        (SELECT json_group_array(d.depends_on) FROM task_dependencies d WHERE d.task_id = t.id) AS depends_on
      FROM tasks t JOIN task_status s ON s.task_id = t.id
      WHERE t.id < @beforeId
        ${byRoot ? "AND t.id IN (SELECT id FROM tasks WHERE root_id = @rootId UNION ALL SELECT @rootId)" : ""}
        AND (@statuses IS NULL OR s.status IN (SELECT value FROM json_each(@statuses)))
        AND (@persona IS NULL OR t.persona_id = @persona)
        AND (@topLevel = 0 OR t.parent_id IS NULL)
        AND (@query IS NULL OR instr(lower(t.title), @query) > 0)
      ORDER BY t.id DESC
      LIMIT @limit`);
    this.pageStmt = page(false);
    this.pageRootStmt = page(true);
    this.throughputStmt = db.prepare(`
      SELECT CAST((at - @since) / @bucketMs AS INTEGER) AS bucket,
        sum(type = 'task:completed') AS completed,
        sum(type = 'task:failed') AS failed,
        sum(type = 'task:retrying') AS retried
      FROM task_events
      WHERE at >= @since AND type IN ('task:completed', 'task:failed', 'task:retrying')
      GROUP BY bucket ORDER BY bucket`);
    this.fullKeysStmt = db.prepare(`
      SELECT k.key, k.running, k.max_running,
        (SELECT json_group_array(s.task_id) FROM task_keys tk JOIN task_status s ON s.task_id = tk.task_id
          WHERE tk.key = k.key AND s.status IN ('claimed','in_progress')) AS holders,
        (SELECT count(*) FROM task_keys tk JOIN task_status s ON s.task_id = tk.task_id
          WHERE tk.key = k.key AND s.status = 'pending') AS pending
      FROM concurrency_keys k INDEXED BY concurrency_keys_full
      WHERE k.running >= k.max_running
      ORDER BY k.key LIMIT @limit`);
  }

  taskPage(params: UiTaskPageParams): UiTaskRow[] {
    const { statuses, query } = pageFilters(params);
    const stmt = params.rootId === undefined ? this.pageStmt : this.pageRootStmt;
    const rows = stmt.all({
      beforeId: params.beforeId ?? Number.MAX_SAFE_INTEGER,
      statuses: statuses === null ? null : JSON.stringify(statuses),
      persona: params.persona ?? null,
      ...(params.rootId === undefined ? {} : { rootId: params.rootId }),
      query,
      topLevel: params.topLevel === true ? 1 : 0,
      limit: params.limit,
    }) as PageRow[];
    return rows.map(toUiTaskRow);
  }

  throughput(params: { since: number; bucketMs: number }): UiThroughputBucket[] {
    return toThroughput(this.throughputStmt.all({ since: params.since, bucketMs: params.bucketMs }) as ThroughputRow[], params);
  }

  fullKeys(params: { limit: number }): UiFullKey[] {
    return (this.fullKeysStmt.all({ limit: params.limit }) as FullKeyRow[]).map(toFullKey);
  }
}
