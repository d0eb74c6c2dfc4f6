import type { Db } from "./database.js";
import { ByRowCount, forEachChunk, placeholders } from "./event-rows.js";
import { rowObjects } from "./row-objects.js";
import type { TaskCounts } from "./task-counts.js";

/**
 * The completion of leased tasks (docs/ARCHITECTURE.md rules 4, 9): the statements that move a
 * claimed or in-progress task to completed, fenced by its lease token, and count it in task_counts.
 * The task's events, usage and dependents are the caller's (Transitions).
 */

/** A leased task's states, in the order completedRows tries them. */
export const LEASED_STATES = ["claimed", "in_progress"] as const;
export type LeasedState = (typeof LEASED_STATES)[number];

/**
 * The settle path's batched completion of `count` tasks in state `from`: parameters are the time
 * twice, then [taskId, leaseToken, resultJson | null] per task as positional VALUES (the alias
 * `batch`), each fenced by its own lease; has_dependents says whether a completed task can ready
 * any (one seek into task_dependencies_dependents). Prepared once per state and row count
 * (event-rows.ts), at most EVENT_ROWS_PER_STATEMENT rows a statement; completedRows runs each, so
 * task_counts is kept per statement (src/store/sqlite/task-counts.ts). The rows went in as one
 * JSON array through json_each, three `->>` a row: SQLite's JSON code was about 6.7k of a settle
 * and claim's 181k instructions a task (callgrind, issue 14).
 * The state is written in the text, not bound: a parameter compared with a column that a partial
 * index's WHERE compares with a constant makes SQLite recompile the statement at every new binding
 * (it planned for that value), which cost a batch of completions more than its writes.
 */
export const completeManySql = (from: LeasedState, count: number) => `
      UPDATE task_status SET status = 'completed', result = batch.column3, progress = 1, finished_at = ?,
        lease_token = NULL, lease_expires_at = NULL, updated_at = ?
      FROM (VALUES ${placeholders(count, 3)}) AS batch
      WHERE task_status.task_id = batch.column1 AND task_status.lease_token = batch.column2
        AND task_status.status = '${from}'
      RETURNING task_status.task_id, task_status.persona_id, task_status.attempts, task_status.assigned_agent_id, task_status.claimed_at,
        EXISTS (SELECT 1 FROM task_dependencies d WHERE d.depends_on = task_status.task_id) AS has_dependents`;
/** completeManySql of two claimed tasks (the plan test's text). */
export const COMPLETE_MANY_SQL = completeManySql("claimed", 2);

/**
 * completeManySql for one task (a batch of one: an MCP agent's completion, `roster run`, a
 * supervisor's settle of one): the same row changes and RETURNING, the row sought by its
 * primary key with named parameters (complete()'s statement too). Params: @taskId @leaseToken
 * @result @now.
 */
const completeOneSql = (from: LeasedState) => `
      UPDATE task_status SET status = 'completed', result = @result, progress = 1, finished_at = @now,
        lease_token = NULL, lease_expires_at = NULL, updated_at = @now
      WHERE task_id = @taskId AND lease_token = @leaseToken AND status = '${from}'
      RETURNING task_id, persona_id, attempts, assigned_agent_id, claimed_at,
        EXISTS (SELECT 1 FROM task_dependencies d WHERE d.depends_on = task_status.task_id) AS has_dependents`;
/** completeOneSql of a claimed task (the plan test's text). */
export const COMPLETE_ONE_SQL = completeOneSql("claimed");

/** What COMPLETE_ONE_SQL and COMPLETE_MANY_SQL return per completed task. */
export interface CompletedRow {
  task_id: number;
  persona_id: string;
  attempts: number;
  assigned_agent_id: string | null;
  claimed_at: number | null;
  has_dependents: number;
}

/** A completion asked for: the lease it is fenced by, and the result as validated JSON text (completionJson). */
export interface CompletionItem {
  taskId: number;
  leaseToken: string;
  resultJson: string | null;
}

/** The completion statements of the settle path (Transitions.complete and completeMany), one set per leased state. */
export class Completions {
  private readonly one;
  private readonly many;

  constructor(
    db: Db,
    private readonly counts: TaskCounts,
  ) {
    // Rows read raw and made objects in JS (row-objects.ts).
    const oneOf = (from: LeasedState) => rowObjects<CompletedRow>(db.prepare(completeOneSql(from)));
    this.one = { claimed: oneOf("claimed"), in_progress: oneOf("in_progress") } as const;
    const manyOf = (from: LeasedState) => new ByRowCount((count) => rowObjects<CompletedRow>(db.prepare(completeManySql(from, count))));
    this.many = { claimed: manyOf("claimed"), in_progress: manyOf("in_progress") } as const;
  }

  /**
   * The completion statements, fenced by each lease: first for the tasks still claimed (a start
   * folded into its settlement, the common case), then for those in progress among the rest, a
   * batch of one by primary key (COMPLETE_ONE_SQL). Each statement's completions are counted in
   * task_counts by state left (task-counts.ts). Rows in no particular order; a lost lease has none.
   */
  rows(items: readonly CompletionItem[], now: number): CompletedRow[] {
    const rows: CompletedRow[] = [];
    let left = items;
    for (const from of LEASED_STATES) {
      const one = left.length === 1 ? left[0]! : null;
      const got =
        one !== null
          ? this.one[from].all({ taskId: one.taskId, leaseToken: one.leaseToken, result: one.resultJson, now })
          : this.chunks(from, left, now);
      if (got.length > 0) {
        const perPersona = new Map<string, number>();
        for (const r of got) perPersona.set(r.persona_id, (perPersona.get(r.persona_id) ?? 0) + 1);
        this.counts.moveMany([...perPersona].map(([persona, n]) => [persona, from, "completed", n] as const));
        rows.push(...got);
      }
      if (rows.length === items.length || from === "in_progress") break;
      const done = new Set(got.map((r) => r.task_id));
      left = left.filter((i) => !done.has(i.taskId));
    }
    return rows;
  }

  /** completeManySql over `items` in chunks; the rows of every chunk. */
  private chunks(from: LeasedState, items: readonly CompletionItem[], now: number): CompletedRow[] {
    const rows: CompletedRow[] = [];
    const statements = this.many[from];
    forEachChunk(
      items.map((i) => [i.taskId, i.leaseToken, i.resultJson] as const),
      [now, now],
      (count, values) => {
        for (const row of statements.of(count).all(values)) rows.push(row);
      },
    );
    return rows;
  }
}
