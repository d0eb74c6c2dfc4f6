import type { UiFullKey, UiTaskPageParams, UiTaskRow, UiThroughputBucket } from "../types.js";
import { pageFilters, toFullKey, toThroughput, toUiTaskRow, type FullKeyRow, type PageRow, type ThroughputRow } from "../ui-reads.js";
import type { Db } from "./database.js";

/**
 * What the dashboard (src/ui) reads beside the Store's own reads: a page of task
 * summaries newest first behind a cursor (no payloads or results, so a page of a
 * 100,000-task database is one short seek down the primary key), and completions
 * and failures per time bucket from the audit trail (a range of its primary key, found by
 * eventsFrom), and
 * the concurrency keys at their limit (the partial index concurrency_keys_full, migration
 * 0006; the tasks of each full key are found through task_keys). Statements prepared
 * once; each runs as one read.
 */
/**
 * How far apart the clocks of processes writing one database may be for the throughput
 * read to still count every event of its window (ms). The cost of more is a longer range read.
 */
export const EVENT_CLOCK_SLACK_MS = 5 * 60_000;

export class UiReads {
  private readonly pageStmt;
  private readonly pageRootStmt;
  private readonly throughputStmt;
  private readonly fullKeysStmt;
  private readonly firstEventAtOrAfter;
  private readonly lastEventId;

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
      WHERE id >= @fromId AND at >= @since AND type IN ('task:completed', 'task:failed', 'task:retrying')
      GROUP BY bucket ORDER BY bucket`);
    this.firstEventAtOrAfter = db.prepare("SELECT id, at FROM task_events WHERE id >= ? ORDER BY id LIMIT 1");
    this.lastEventId = db.prepare("SELECT max(id) FROM task_events").pluck();
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
    const fromId = this.eventsFrom(params.since - EVENT_CLOCK_SLACK_MS);
    return toThroughput(this.throughputStmt.all({ fromId, since: params.since, bucketMs: params.bucketMs }) as ThroughputRow[], params);
  }

  /**
   * The lowest event id whose row, and every later row, was written at or after `at`, as
   * far as a binary search of the primary key can tell (about 20 primary-key reads for a
   * million events): ids grow with time, so the search needs no index of `at`, which every
   * transition's event row would write (migration 0010). Several processes' clocks may
   * disagree; the caller searches from a slack before its time and filters on `at` itself.
   */
  private eventsFrom(at: number): number {
    let high = (this.lastEventId.get() as number | null) ?? 0;
    let low = 0;
    // Invariant: every row with id < low has at < `at` as far as the probes saw; high is a candidate.
    while (low < high) {
      const mid = Math.floor((low + high) / 2);
      const row = this.firstEventAtOrAfter.get(mid) as { id: number; at: number } | undefined;
      if (row === undefined || row.at >= at) high = mid;
      else low = row.id + 1;
    }
    return low;
  }

  fullKeys(params: { limit: number }): UiFullKey[] {
    return (this.fullKeysStmt.all({ limit: params.limit }) as FullKeyRow[]).map(toFullKey);
  }
}
