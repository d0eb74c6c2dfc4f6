import { RosterError } from "../../errors.js";
import { blocksDependent, refuseCycle, refuseNewDependency, refuseSelfDependency } from "../add-dependency.js";
import type { TaskState } from "../types.js";
import type { Tx } from "./database.js";
import { parkForApproval } from "./approvals.js";
import { insertEvent, type PgGraph } from "./graph.js";

/**
 * A person's (or an agent's) commands on a task outside any lease, on PostgreSQL, as
 * src/store/sqlite/task-commands.ts: cancel, retry by hand, add a dependency. Each runs in the
 * caller's transaction, locks the task's row first (hosts write concurrently), writes its
 * task_events row there (docs/ARCHITECTURE.md rule 9) and queues its notification.
 * Split from transitions.ts, by concern.
 */
export class PgTaskCommands {
  constructor(private readonly graph: PgGraph) {}

  async cancel(tx: Tx, params: { taskId: number; reason?: string | undefined; by?: string | undefined; now: number }): Promise<{ cancelled: number[]; blocked: number[] }> {
    const row = await this.requireTask(tx, params.taskId);
    if (row.status === "completed" || row.status === "failed" || row.status === "cancelled") {
      throw new RosterError("INVALID_STATE", `task ${params.taskId} is ${row.status}; only unfinished tasks can be cancelled`, { details: { taskId: params.taskId, status: row.status } });
    }
    await tx.run(
      `UPDATE task_status SET status = 'cancelled', finished_at = $2::bigint, lease_token = NULL, lease_expires_at = NULL, updated_at = $2::bigint
       WHERE task_id = $1 AND status NOT IN ('completed','failed','cancelled')`,
      [params.taskId, params.now],
    );
    const blocked = await this.graph.blockDependents(tx, params.taskId, params.now);
    await insertEvent(tx, params.taskId, "task:cancelled", params.now, params.by ?? null, row.attempts, { from: row.status, reason: params.reason ?? null, blocked: blocked.length });
    tx.emit("task:cancelled", { taskIds: [params.taskId], persona: row.persona_id });
    return { cancelled: [params.taskId], blocked };
  }

  async retry(tx: Tx, params: { taskId: number; by?: string | undefined; now: number }): Promise<{ status: TaskState; unblocked: number[] }> {
    const row = await this.requireTask(tx, params.taskId);
    if (row.status !== "failed" && row.status !== "cancelled") {
      throw new RosterError("INVALID_STATE", `task ${params.taskId} is ${row.status}; only failed or cancelled tasks can be retried`, { details: { taskId: params.taskId, status: row.status } });
    }
    let status: TaskState = row.unmet_deps === 0 ? "pending" : (await this.graph.blockedDependencyCount(tx, params.taskId)) > 0 ? "blocked" : "waiting";
    await tx.run(
      `UPDATE task_status SET status = $2, attempts = 0, run_at = $3::bigint, ready_at = CASE WHEN $2 = 'pending' THEN $3::bigint END,
         finished_at = NULL, assigned_agent_id = NULL, lease_token = NULL, lease_expires_at = NULL, leases_lost = 0, reaped_token = NULL,
         progress = NULL, progress_message = NULL, result = NULL, updated_at = $3::bigint
       WHERE task_id = $1 AND status IN ('failed','cancelled')`,
      [params.taskId, status, params.now],
    );
    // A ready task of a human persona parks at once: the retry reports and records where it is.
    if (status === "pending" && (await parkForApproval(tx, [{ id: params.taskId }], params.now)).length > 0) status = "awaiting_approval";
    await insertEvent(tx, params.taskId, "task:retried", params.now, params.by ?? null, 0, { from: row.status, status });
    const unblocked = status === "blocked" ? [] : await this.graph.unblockDependents(tx, params.taskId, params.now, params.by ?? null);
    tx.emit("task:retried", { taskId: params.taskId, persona: row.persona_id });
    if (status === "pending") tx.emit("task:ready", { ids: [params.taskId], personas: [row.persona_id] });
    return { status, unblocked };
  }

  async addDependency(tx: Tx, params: { taskId: number; dependsOn: number; by?: string | undefined; now: number }): Promise<{ status: TaskState }> {
    const { taskId, dependsOn, now } = params;
    refuseSelfDependency(taskId, dependsOn);
    const task = await this.requireTask(tx, taskId);
    const dep = await tx.one<{ status: TaskState }>("SELECT status FROM task_status WHERE task_id = $1 FOR SHARE", [dependsOn]);
    refuseNewDependency(taskId, task, dependsOn, dep);
    if ((await tx.one("SELECT 1 FROM task_dependencies WHERE task_id = $1 AND depends_on = $2", [taskId, dependsOn])) !== undefined) return { status: task.status };
    refuseCycle(taskId, dependsOn, await this.graph.dependencyPath(tx, dependsOn, taskId));
    await tx.run("INSERT INTO task_dependencies (task_id, depends_on) VALUES ($1, $2)", [taskId, dependsOn]);
    let status: TaskState = task.status;
    if (dep.status !== "completed") {
      const bad = blocksDependent(dep.status);
      status = (
        await tx.one<{ status: TaskState }>(
          `UPDATE task_status SET unmet_deps = unmet_deps + 1, updated_at = $2::bigint,
             status = CASE WHEN $3::boolean THEN 'blocked' WHEN status = 'pending' THEN 'waiting' ELSE status END,
             ready_at = CASE WHEN status = 'pending' THEN NULL ELSE ready_at END
           WHERE task_id = $1 RETURNING status`,
          [taskId, now, bad],
        )
      )!.status;
      if (bad && task.status !== "blocked") await this.graph.blockDependents(tx, taskId, now);
    }
    await insertEvent(tx, taskId, "dependency:added", now, params.by ?? null, null, { dependsOn, status });
    return { status };
  }

  private async requireTask(tx: Tx, taskId: number): Promise<{ status: TaskState; persona_id: string; attempts: number; unmet_deps: number }> {
    const row = await tx.one<{ status: TaskState; persona_id: string; attempts: number; unmet_deps: number }>(
      "SELECT status, persona_id, attempts, unmet_deps FROM task_status WHERE task_id = $1 FOR UPDATE",
      [taskId],
    );
    if (row === undefined) throw new RosterError("TASK_NOT_FOUND", `taskId: task ${taskId} does not exist`, { details: { field: "taskId", taskId } });
    return row;
  }
}
