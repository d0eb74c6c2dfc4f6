import type { Db } from "./database.js";
import { dependencyPath } from "../add-dependency.js";
import type { TaskState } from "../types.js";
import type { Readied } from "../events.js";
import type { SqliteApprovalGate } from "./approvals.js";

/**
 * docs/ARCHITECTURE.md rule 2: completing @taskId decrements its direct dependents' unmet counters
 * (one seek into task_dependencies_dependents); a waiting task whose last unmet
 * dependency this was becomes pending. Old values on the right-hand side.
 */
export const COMPLETE_DEPENDENCIES_SQL = `
      UPDATE task_status SET
        unmet_deps = unmet_deps - 1,
        status     = CASE WHEN status = 'waiting' AND unmet_deps = 1 THEN 'pending' ELSE status END,
        ready_at   = CASE WHEN status = 'waiting' AND unmet_deps = 1 THEN max(run_at, @now) ELSE ready_at END,
        updated_at = @now
      WHERE task_id IN (SELECT task_id FROM task_dependencies WHERE depends_on = @taskId)
        AND unmet_deps > 0
      RETURNING task_id, status, persona_id`;

/** COMPLETE_DEPENDENCIES_SQL for a set of completed tasks (@done, a JSON array of ids): a dependent's counter drops by how many of them it waited for. */
export const DECREMENT_DEPENDENTS_MANY_SQL = `
      UPDATE task_status SET
        unmet_deps = max(unmet_deps - c.n, 0),
        status     = CASE WHEN status = 'waiting' AND unmet_deps <= c.n THEN 'pending' ELSE status END,
        ready_at   = CASE WHEN status = 'waiting' AND unmet_deps <= c.n THEN max(run_at, @now) ELSE ready_at END,
        updated_at = @now
      FROM (SELECT d.task_id AS id, count(*) AS n FROM task_dependencies d
            WHERE d.depends_on IN (SELECT value FROM json_each(@done)) GROUP BY d.task_id) AS c
      WHERE task_status.task_id = c.id AND task_status.unmet_deps > 0
      RETURNING task_status.task_id, task_status.status, task_status.persona_id`;

/** Which of the completed tasks (@done) each readied dependent (@ready) is recorded as ready after: the highest id. */
export const READIED_AFTER_SQL = `
      SELECT d.task_id AS id, max(d.depends_on) AS after FROM task_dependencies d
      WHERE d.task_id IN (SELECT value FROM json_each(@ready)) AND d.depends_on IN (SELECT value FROM json_each(@done))
      GROUP BY d.task_id`;

/**
 * Dependency-graph writes, all run inside a caller's transaction. Readiness is kept
 * by the `unmet_deps` counter, never by scanning the graph: completing a task
 * decrements its direct dependents, and the ones that reach zero become pending.
 */
export class GraphStatements {
  private readonly decrementDependents;
  private readonly decrementDependentsMany;
  private readonly readiedAfter;
  private readonly insertReadyEventsMany;
  private readonly insertReadyEvents;
  private readonly blockDescendants;
  private readonly insertBlockedEvents;
  private readonly directDependents;
  private readonly blockedDependencyCount;
  private readonly unblock;
  private readonly dependenciesOf;

  constructor(
    private readonly db: Db,
    /** Parks readied tasks of human personas (src/store/approval-gate.ts). */
    readonly approvals: SqliteApprovalGate,
  ) {
    this.decrementDependents = db.prepare(COMPLETE_DEPENDENCIES_SQL);
    // The same for a set of completed tasks (@done, a JSON array of ids): a dependent's counter drops by how many of them it waited for.
    this.decrementDependentsMany = db.prepare(DECREMENT_DEPENDENTS_MANY_SQL);
    // Which of the completed tasks each readied dependent is recorded as ready after: the highest id.
    this.readiedAfter = db.prepare(READIED_AFTER_SQL);
    this.insertReadyEventsMany = db.prepare(`
      INSERT INTO task_events (task_id, type, at, data)
      SELECT value ->> 0, 'task:ready', @now, json_object('after', value ->> 1) FROM json_each(@rows)`);
    this.insertReadyEvents = db.prepare(`
      INSERT INTO task_events (task_id, type, at, data)
      SELECT value, 'task:ready', @now, json_object('after', @taskId) FROM json_each(@ids)`);
    this.blockDescendants = db.prepare(`
      WITH RECURSIVE down(id) AS (
        SELECT task_id FROM task_dependencies WHERE depends_on = @taskId
        UNION
        SELECT d.task_id FROM task_dependencies d JOIN down ON d.depends_on = down.id
      )
      UPDATE task_status SET status = 'blocked', updated_at = @now
      WHERE task_id IN (SELECT id FROM down) AND status = 'waiting'
      RETURNING task_id`);
    this.insertBlockedEvents = db.prepare(`
      INSERT INTO task_events (task_id, type, at, data)
      SELECT value, 'task:blocked', @now, json_object('by', @taskId) FROM json_each(@ids)`);
    this.directDependents = db.prepare(
      "SELECT d.task_id AS id, s.status FROM task_dependencies d JOIN task_status s ON s.task_id = d.task_id WHERE d.depends_on = ?",
    );
    this.blockedDependencyCount = db
      .prepare(
        `SELECT count(*) FROM task_dependencies d JOIN task_status s ON s.task_id = d.depends_on
         WHERE d.task_id = ? AND s.status IN ('failed','cancelled','blocked')`,
      )
      .pluck();
    this.unblock = db.prepare("UPDATE task_status SET status = 'waiting', updated_at = ? WHERE task_id = ? AND status = 'blocked'");
    this.dependenciesOf = db.prepare("SELECT depends_on FROM task_dependencies WHERE task_id = ?").pluck();
  }

  /** After `taskId` completed: dependents' counters drop; returns the tasks that became ready. */
  completeDependencies(taskId: number, now: number): Readied[] {
    const rows = this.decrementDependents.all({ taskId, now }) as Array<{ task_id: number; status: TaskState; persona_id: string }>;
    const ready = rows.filter((row) => row.status === "pending").map((row) => ({ id: row.task_id, persona: row.persona_id }));
    // A parked one is still reported readied (task:ready names it), as when the gate was a trigger.
    this.approvals.park(ready, now);
    if (ready.length > 0) this.insertReadyEvents.run({ ids: JSON.stringify(ready.map((r) => r.id)), now, taskId });
    return ready;
  }

  /**
   * After the tasks `done` completed together: their dependents' counters drop in
   * one statement. Returns the tasks that became ready and, per completed task, how
   * many became ready after it (only tasks that readied some are in the map).
   */
  completeDependenciesMany(done: number[], now: number): { ready: Readied[]; readiedBy: Map<number, number> } {
    const doneJson = JSON.stringify(done);
    const rows = this.decrementDependentsMany.all({ done: doneJson, now }) as Array<{ task_id: number; status: TaskState; persona_id: string }>;
    const ready = rows.filter((row) => row.status === "pending").map((row) => ({ id: row.task_id, persona: row.persona_id }));
    const readiedBy = new Map<number, number>();
    if (ready.length === 0) return { ready, readiedBy };
    this.approvals.park(ready, now);
    const after = this.readiedAfter.all({ ready: JSON.stringify(ready.map((r) => r.id)), done: doneJson }) as Array<{ id: number; after: number }>;
    this.insertReadyEventsMany.run({ now, rows: JSON.stringify(after.map((row) => [row.id, row.after])) });
    for (const row of after) readiedBy.set(row.after, (readiedBy.get(row.after) ?? 0) + 1);
    return { ready, readiedBy };
  }

  /** After `taskId` ended failed or cancelled: every waiting descendant becomes blocked. */
  blockDependents(taskId: number, now: number): number[] {
    const ids = (this.blockDescendants.all({ taskId, now }) as Array<{ task_id: number }>).map((row) => row.task_id);
    if (ids.length > 0) this.insertBlockedEvents.run({ ids: JSON.stringify(ids), now, taskId });
    return ids;
  }

  /**
   * After `taskId` was retried: blocked descendants with no other failed,
   * cancelled or blocked dependency go back to waiting, breadth first.
   */
  unblockDependents(taskId: number, now: number, onUnblocked: (id: number) => void): number[] {
    const out: number[] = [];
    const queue = [taskId];
    while (queue.length > 0) {
      const current = queue.shift()!;
      for (const row of this.directDependents.all(current) as Array<{ id: number; status: TaskState }>) {
        if (row.status !== "blocked") continue;
        if ((this.blockedDependencyCount.get(row.id) as number) > 0) continue;
        if (this.unblock.run(now, row.id).changes === 1) {
          out.push(row.id);
          onUnblocked(row.id);
          queue.push(row.id);
        }
      }
    }
    return out;
  }

  /** Whether `from` reaches `to` by following dependencies; the path if it does (src/store/add-dependency.ts). */
  dependencyPath(from: number, to: number): number[] | null {
    return dependencyPath(from, to, (taskId) => this.dependenciesOf.all(taskId) as number[]);
  }
}
