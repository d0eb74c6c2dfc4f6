import type { Counts, CountsParams, ListTasksParams, RunningTask, TaskDetail, TaskEvent, TaskRecord, TaskState } from "../types.js";
import {
  EVENT_LIMIT_DEFAULT,
  LIST_LIMIT_DEFAULT,
  listStatuses,
  taskNotFound,
  toCounts,
  toRunningTask,
  toTaskDetail,
  toTaskEvent,
  toTaskRecord,
  type BriefRow,
  type EventRow,
  type RunningRow,
  type TaskRow,
} from "../rows.js";
import type { Db } from "./database.js";

/** The columns of a TaskRecord (src/store/rows.ts maps them); JSON stays text. */
export const TASK_COLUMNS = `t.id, t.title, t.description, t.persona_id, t.payload, t.parent_id, t.root_id, t.created_by,
  t.priority, t.retry_policy, t.timeout_ms, t.idempotency_key, t.created_at,
  s.status, s.unmet_deps, s.run_at, s.ready_at, s.attempts, s.max_attempts, s.assigned_agent_id, s.lease_token,
  s.lease_ms, s.lease_expires_at, s.claimed_at, s.started_at, s.finished_at, s.progress, s.progress_message,
  s.result, s.last_error, s.updated_at,
  (SELECT json_group_array(d.depends_on) FROM task_dependencies d WHERE d.task_id = t.id) AS depends_on`;


/** Counts per persona and state (metrics read it at every scrape), from the trigger-kept counters. */
export const COUNTS_ALL_SQL = "SELECT persona_id, status, n FROM task_counts WHERE n > 0";
/**
 * Leased tasks (status, metrics). Driven from the partial index of leased rows
 * (task_status_leased), which holds only claimed and in-progress rows; joined the
 * other way round it read every task. Params: @persona (or null) @limit.
 */
export const RUNNING_SQL = `
      SELECT t.id, t.title, s.persona_id, s.status, s.attempts, s.progress, s.progress_message, s.assigned_agent_id, s.started_at
      FROM task_status s INDEXED BY task_status_leased CROSS JOIN tasks t ON t.id = s.task_id
      WHERE s.status IN ('claimed','in_progress') AND (@persona IS NULL OR s.persona_id = @persona)
      ORDER BY s.task_id LIMIT @limit`;

/**
 * The next wake-up: earliest future run_at of a pending task. Params: @now.
 * `run_at > updated_at` names the partial index task_status_delayed (migration 0010):
 * the pending tasks that were delayed when they became pending, the only ones whose
 * run_at can lie ahead (a task ready when written has run_at <= its write's now). A task
 * written by a process whose clock ran ahead of ours by more than its delay is not seen
 * here; the caller's poll claims it as before (docs/ARCHITECTURE.md rule 13).
 */
export const NEXT_RUN_ALL_SQL = "SELECT min(run_at) FROM task_status WHERE status = 'pending' AND run_at > updated_at AND run_at > @now";
/**
 * The same for one persona. Params: @persona @now. The unary + keeps the planner
 * off the claim index (persona_id, priority, run_at), where min(run_at) would read
 * every pending task of the persona; instead it walks task_status_delayed from @now
 * and stops at the first task of the persona, which is one seek when the delayed
 * tasks are few (they are: ready ones are not in it).
 */
export const NEXT_RUN_PERSONA_SQL = `
  SELECT run_at FROM task_status INDEXED BY task_status_delayed
  WHERE status = 'pending' AND run_at > updated_at AND +persona_id = @persona AND run_at > @now
  ORDER BY run_at LIMIT 1`;

/**
 * The ready task a claim of this persona would take next (the claim's own order,
 * one seek into the claim index), and since when it is ready: the supervisor's
 * stall guard asks it for every persona it serves. Params: @persona @now.
 */
export const OLDEST_READY_SQL = `
  SELECT task_id, max(run_at, coalesce(ready_at, run_at)) AS ready_since FROM task_status
  WHERE status = 'pending' AND persona_id = @persona AND run_at <= @now
  ORDER BY priority DESC, run_at, task_id LIMIT 1`;

/**
 * Of the leases given (rows [taskId, leaseToken]), those no longer current, with
 * the task's status now: the supervisor asks after another process wrote, so a
 * cancel from `roster cancel` reaches a running attempt at once, not at the next
 * renewal. Primary-key seeks. Params: @leases.
 */
export const LEASES_GONE_SQL = `
  SELECT b.value ->> 0 AS task_id, b.value ->> 1 AS lease_token, s.status
  FROM json_each(@leases) AS b LEFT JOIN task_status s ON s.task_id = b.value ->> 0
  WHERE s.lease_token IS NOT b.value ->> 1 OR s.status NOT IN ('claimed','in_progress')`;

/** Read-only queries. One prepared statement each; filters are parameters, never concatenated. */
export class TaskQueries {
  private readonly byId;
  private readonly listStmt;
  private readonly oldestReadyStmt;
  private readonly leasesGoneStmt;
  private readonly listNewestStmt;
  private readonly availableStmt;
  private readonly dependencies;
  private readonly dependents;
  private readonly children;
  private readonly latestEvents;
  private readonly eventsAfter;
  private readonly countsAll;
  private readonly countsRoot;
  private readonly runningStmt;
  private readonly nextRunAll;
  private readonly nextRunPersona;

  constructor(db: Db) {
    const from = "FROM tasks t JOIN task_status s ON s.task_id = t.id";
    this.byId = db.prepare(`SELECT ${TASK_COLUMNS} ${from} WHERE t.id = ?`);
    // tasks.list's filter: after a cursor, by status, persona, parent or goal subtree.
    const listed = `
      SELECT ${TASK_COLUMNS} ${from}
      WHERE t.id > @afterId
        AND (@statuses IS NULL OR s.status IN (SELECT value FROM json_each(@statuses)))
        AND (@persona IS NULL OR t.persona_id = @persona)
        AND (@parentId IS NULL OR t.parent_id = @parentId)
        AND (@rootId IS NULL OR t.root_id = @rootId OR t.id = @rootId)`;
    this.listStmt = db.prepare(`${listed}
      ORDER BY t.id
      LIMIT @limit`);
    // The same filter, newest first (`roster ls`).
    this.listNewestStmt = db.prepare(`${listed}
      ORDER BY t.id DESC
      LIMIT @limit`);
    // `LIMIT @limit + 0`: see CLAIM_SQL (a bare parameter recompiles the statement at every call).
    this.availableStmt = db.prepare(`
      SELECT ${TASK_COLUMNS} ${from}
      WHERE s.task_id IN (
        SELECT task_id FROM task_status
        WHERE status = 'pending' AND persona_id = @persona AND run_at <= @now
        ORDER BY priority DESC, run_at, task_id LIMIT @limit + 0)
      ORDER BY s.priority DESC, s.run_at, s.task_id`);
    this.dependencies = db.prepare(`
      SELECT t.id, t.title, t.persona_id, s.status, s.result FROM task_dependencies d
      JOIN tasks t ON t.id = d.depends_on JOIN task_status s ON s.task_id = t.id
      WHERE d.task_id = ? ORDER BY t.id`);
    this.dependents = db.prepare(`
      SELECT t.id, t.title, t.persona_id, s.status FROM task_dependencies d
      JOIN tasks t ON t.id = d.task_id JOIN task_status s ON s.task_id = t.id
      WHERE d.depends_on = ? ORDER BY t.id`);
    this.children = db.prepare(`SELECT t.id, t.title, t.persona_id, s.status ${from} WHERE t.parent_id = ? ORDER BY t.id`);
    this.latestEvents = db.prepare(
      "SELECT * FROM (SELECT * FROM task_events WHERE task_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
    );
    this.eventsAfter = db.prepare("SELECT * FROM task_events WHERE task_id = ? AND id > ? ORDER BY id LIMIT ?");
    this.countsAll = db.prepare(COUNTS_ALL_SQL);
    this.countsRoot = db.prepare(`
      SELECT s.persona_id, s.status, count(*) AS n ${from}
      WHERE t.id = @rootId OR t.root_id = @rootId GROUP BY s.persona_id, s.status`);
    this.runningStmt = db.prepare(RUNNING_SQL);
    this.nextRunAll = db.prepare(NEXT_RUN_ALL_SQL).pluck();
    this.oldestReadyStmt = db.prepare(OLDEST_READY_SQL);
    this.leasesGoneStmt = db.prepare(LEASES_GONE_SQL);
    this.nextRunPersona = db.prepare(NEXT_RUN_PERSONA_SQL).pluck();
  }

  get(taskId: number, eventLimit = EVENT_LIMIT_DEFAULT): TaskDetail {
    const row = this.byId.get(taskId) as TaskRow | undefined;
    if (row === undefined) throw taskNotFound(taskId);
    return toTaskDetail(row, {
      dependencies: this.dependencies.all(taskId) as Array<BriefRow & { result: string | null }>,
      dependents: this.dependents.all(taskId) as BriefRow[],
      children: this.children.all(taskId) as BriefRow[],
      events: this.latestEvents.all(taskId, eventLimit) as EventRow[],
    });
  }

  exists(taskId: number): boolean {
    return this.byId.get(taskId) !== undefined;
  }

  list(params: ListTasksParams): TaskRecord[] {
    const statuses = listStatuses(params);
    const limit = params.limit === undefined ? LIST_LIMIT_DEFAULT : params.limit === 0 ? -1 : params.limit;
    const rows = (params.newestFirst === true ? this.listNewestStmt : this.listStmt).all({
      afterId: params.afterId ?? 0,
      statuses: statuses === null ? null : JSON.stringify(statuses),
      persona: params.persona ?? null,
      parentId: params.parentId ?? null,
      rootId: params.rootId ?? null,
      limit,
    }) as TaskRow[];
    return rows.map(toTaskRecord);
  }

  available(params: { persona: string; now: number; limit?: number | undefined }): TaskRecord[] {
    return (this.availableStmt.all({ persona: params.persona, now: params.now, limit: params.limit ?? LIST_LIMIT_DEFAULT }) as TaskRow[]).map(
      toTaskRecord,
    );
  }

  events(taskId: number, afterId = 0, limit = 1000): TaskEvent[] {
    return (this.eventsAfter.all(taskId, afterId, limit === 0 ? -1 : limit) as EventRow[]).map(toTaskEvent);
  }

  counts(params: CountsParams = {}): Counts {
    const rows = (
      params.rootId === undefined ? this.countsAll.all() : this.countsRoot.all({ rootId: params.rootId })
    ) as Array<{ persona_id: string; status: TaskState; n: number }>;
    return toCounts(rows);
  }

  running(params: { persona?: string | undefined; limit?: number | undefined } = {}): RunningTask[] {
    return (this.runningStmt.all({ persona: params.persona ?? null, limit: params.limit ?? 1000 }) as RunningRow[]).map(toRunningTask);
  }

  leasesGone(leases: ReadonlyArray<{ taskId: number; leaseToken: string }>): Array<{ taskId: number; leaseToken: string; status: TaskState | null }> {
    if (leases.length === 0) return [];
    const rows = this.leasesGoneStmt.all({ leases: JSON.stringify(leases.map((l) => [l.taskId, l.leaseToken])) }) as Array<{
      task_id: number;
      lease_token: string;
      status: TaskState | null;
    }>;
    return rows.map((row) => ({ taskId: row.task_id, leaseToken: row.lease_token, status: row.status }));
  }

  oldestReady(params: { persona: string; now: number }): { taskId: number; readySince: number } | null {
    const row = this.oldestReadyStmt.get(params) as { task_id: number; ready_since: number } | undefined;
    return row === undefined ? null : { taskId: row.task_id, readySince: row.ready_since };
  }

  nextRunAt(params: { persona?: string | undefined; now: number }): number | null {
    const value = (params.persona === undefined
      ? this.nextRunAll.get({ now: params.now })
      : this.nextRunPersona.get({ persona: params.persona, now: params.now })) as
      | number
      | null;
    return value ?? null;
  }
}
