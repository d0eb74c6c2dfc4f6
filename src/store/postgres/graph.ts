import { dependencyPathAsync } from "../add-dependency.js";
import type { Readied } from "../events.js";
import type { TaskState } from "../types.js";
import type { Tx } from "./database.js";
import { parkForApproval } from "./approvals.js";

/**
 * Completing a task decrements its dependents' counters (rule 2); a waiting task
 * whose last unmet dependency this was becomes pending. Old values on the right.
 */
export const PG_COMPLETE_DEPENDENCIES_SQL = `
      UPDATE task_status SET
        unmet_deps = unmet_deps - 1,
        status     = CASE WHEN status = 'waiting' AND unmet_deps = 1 THEN 'pending' ELSE status END,
        ready_at   = CASE WHEN status = 'waiting' AND unmet_deps = 1 THEN greatest(run_at, $2::bigint) ELSE ready_at END,
        updated_at = $2::bigint
      WHERE task_id IN (SELECT task_id FROM task_dependencies WHERE depends_on = $1) AND unmet_deps > 0
      RETURNING task_id, status, persona_id`;

/** One task_events row, in the caller's transaction (docs/ARCHITECTURE.md rule 9). */
export async function insertEvent(tx: Tx, taskId: number | null, type: string, now: number, agentId: string | null, attempt: number | null, data?: unknown): Promise<void> {
  await tx.run("INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES ($1, $2, $3, $4, $5, $6)", [
    taskId,
    type,
    now,
    agentId,
    attempt,
    data === undefined ? null : JSON.stringify(data),
  ]);
}

/**
 * The dependency graph's writes on PostgreSQL, as src/store/sqlite/graph.ts (rule 2): readiness
 * kept by the unmet_deps counters, dependents locked in task id order before they change (no
 * deadlocks between hosts), blocking and unblocking, the cycle check. In the caller's transaction.
 */
export class PgGraph {
  async completeDependencies(tx: Tx, taskId: number, now: number): Promise<Readied[]> {
    await this.lockDependents(tx, [taskId]);
    const rows = await tx.rows<{ task_id: number; status: TaskState; persona_id: string }>(PG_COMPLETE_DEPENDENCIES_SQL, [taskId, now]);
    const ready = rows.filter((r) => r.status === "pending").map((r) => ({ id: r.task_id, persona: r.persona_id }));
    // A parked one is still reported readied (task:ready names it), as when the gate was a trigger.
    await parkForApproval(tx, ready, now);
    if (ready.length > 0) {
      await tx.run(
        "INSERT INTO task_events (task_id, type, at, data) SELECT u.id, 'task:ready', $2, json_build_object('after', $3::bigint)::text FROM unnest($1::bigint[]) AS u(id)",
        [ready.map((r) => r.id), now, taskId],
      );
    }
    return ready;
  }

  /**
   * Locks the dependents of `done` in task id order before their counters change.
   * Completions on several hosts decrement shared dependents; taking the row locks in
   * one order keeps two such transactions from deadlocking (which PostgreSQL only
   * detects after deadlock_timeout, a second by default).
   */
  private async lockDependents(tx: Tx, done: number[]): Promise<void> {
    await tx.run(
      `SELECT task_id FROM task_status WHERE task_id IN (SELECT task_id FROM task_dependencies WHERE depends_on = ANY($1::bigint[]))
       ORDER BY task_id FOR UPDATE`,
      [done],
    );
  }

  /**
   * completeMany's dependents: locks them in task id order, decrements their counters
   * by how many of `done` each waited on, writes task:ready for those now pending and
   * counts in `readiedBy` (completed task → dependents it readied) the highest id.
   */
  async decrementDependents(tx: Tx, done: number[], now: number, readiedBy: Map<number, number>, readied: Readied[]): Promise<void> {
    await this.lockDependents(tx, done);
    const changed = await tx.rows<{ task_id: number; status: TaskState; persona_id: string }>(
      `UPDATE task_status s SET
         unmet_deps = greatest(s.unmet_deps - c.n, 0),
         status     = CASE WHEN s.status = 'waiting' AND s.unmet_deps <= c.n THEN 'pending' ELSE s.status END,
         ready_at   = CASE WHEN s.status = 'waiting' AND s.unmet_deps <= c.n THEN greatest(s.run_at, $2::bigint) ELSE s.ready_at END,
         updated_at = $2::bigint
       FROM (SELECT d.task_id AS id, count(*)::int AS n FROM task_dependencies d WHERE d.depends_on = ANY($1::bigint[]) GROUP BY d.task_id) AS c
       WHERE s.task_id = c.id AND s.unmet_deps > 0
       RETURNING s.task_id, s.status, s.persona_id`,
      [done, now],
    );
    for (const r of changed) if (r.status === "pending") readied.push({ id: r.task_id, persona: r.persona_id });
    const ready = readied.map((r) => r.id);
    await parkForApproval(tx, readied, now);
    if (ready.length > 0) {
      const after = await tx.rows<{ id: number; after: number }>(
        `SELECT d.task_id AS id, max(d.depends_on) AS after FROM task_dependencies d
         WHERE d.task_id = ANY($1::bigint[]) AND d.depends_on = ANY($2::bigint[]) GROUP BY d.task_id`,
        [ready, done],
      );
      await tx.run(
        "INSERT INTO task_events (task_id, type, at, data) SELECT u.id, 'task:ready', $3, json_build_object('after', u.after)::text FROM unnest($1::bigint[], $2::bigint[]) AS u(id, after)",
        [after.map((a) => a.id), after.map((a) => a.after), now],
      );
      for (const a of after) readiedBy.set(a.after, (readiedBy.get(a.after) ?? 0) + 1);
    }
  }

  /** After `taskId` ended failed or cancelled: every waiting descendant becomes blocked. */
  async blockDependents(tx: Tx, taskId: number, now: number): Promise<number[]> {
    const ids = (
      await tx.rows<{ task_id: number }>(
        `WITH RECURSIVE down(id) AS (
           SELECT task_id FROM task_dependencies WHERE depends_on = $1
           UNION
           SELECT d.task_id FROM task_dependencies d JOIN down ON d.depends_on = down.id)
         UPDATE task_status SET status = 'blocked', updated_at = $2::bigint
         WHERE task_id IN (SELECT id FROM down) AND status = 'waiting'
         RETURNING task_id`,
        [taskId, now],
      )
    ).map((r) => r.task_id);
    if (ids.length > 0) {
      await tx.run(
        "INSERT INTO task_events (task_id, type, at, data) SELECT u.id, 'task:blocked', $2, json_build_object('by', $3::bigint)::text FROM unnest($1::bigint[]) AS u(id)",
        [ids, now, taskId],
      );
    }
    return ids;
  }

  async blockedDependencyCount(tx: Tx, taskId: number): Promise<number> {
    const row = await tx.one<{ n: number }>(
      `SELECT count(*) AS n FROM task_dependencies d JOIN task_status s ON s.task_id = d.depends_on
       WHERE d.task_id = $1 AND s.status IN ('failed','cancelled','blocked')`,
      [taskId],
    );
    return row?.n ?? 0;
  }

  /** After `taskId` was retried: blocked descendants with no other failed, cancelled or blocked dependency go back to waiting, breadth first. */
  async unblockDependents(tx: Tx, taskId: number, now: number, by: string | null): Promise<number[]> {
    const out: number[] = [];
    const queue = [taskId];
    while (queue.length > 0) {
      const current = queue.shift()!;
      const dependents = await tx.rows<{ id: number; status: TaskState }>(
        "SELECT d.task_id AS id, s.status FROM task_dependencies d JOIN task_status s ON s.task_id = d.task_id WHERE d.depends_on = $1 ORDER BY d.task_id",
        [current],
      );
      for (const row of dependents) {
        if (row.status !== "blocked") continue;
        if ((await this.blockedDependencyCount(tx, row.id)) > 0) continue;
        if ((await tx.run("UPDATE task_status SET status = 'waiting', updated_at = $1::bigint WHERE task_id = $2 AND status = 'blocked'", [now, row.id])) === 1) {
          out.push(row.id);
          await insertEvent(tx, row.id, "task:unblocked", now, by, null, { by: taskId });
          queue.push(row.id);
        }
      }
    }
    return out;
  }

  /** Whether `from` reaches `to` by following dependencies; the path if it does (src/store/add-dependency.ts). */
  dependencyPath(tx: Tx, from: number, to: number): Promise<number[] | null> {
    return dependencyPathAsync(from, to, async (taskId) =>
      (await tx.rows<{ d: number }>("SELECT depends_on AS d FROM task_dependencies WHERE task_id = $1", [taskId])).map((row) => row.d),
    );
  }
}
