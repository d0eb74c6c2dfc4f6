import { RosterError } from "../../errors.js";
import { blocksDependent, refuseCycle, refuseNewDependency, refuseSelfDependency } from "../add-dependency.js";
import type { TaskState } from "../types.js";
import type { Db, TransactionRunner } from "./database.js";
import type { GraphStatements } from "./graph.js";
import type { Transitions } from "./transitions.js";

/**
 * A person's (or an agent's) commands on a task, outside any lease: cancel, retry by hand, add a
 * dependency. Each runs inside a transaction the caller opened, writes its task_events row there
 * (docs/ARCHITECTURE.md rule 9) and queues its notification. Split from transitions.ts, by concern.
 */
export class TaskCommands {
  private readonly statusRow;
  private readonly cancelStmt;
  private readonly retryManualStmt;
  private readonly blockedDepCount;
  private readonly edgeExists;
  private readonly insertEdge;
  private readonly addUnmet;

  constructor(
    db: Db,
    private readonly tx: TransactionRunner,
    private readonly graph: GraphStatements,
    private readonly transitions: Pick<Transitions, "event">,
  ) {
    this.statusRow = db.prepare("SELECT status, persona_id, attempts, unmet_deps, assigned_agent_id FROM task_status WHERE task_id = ?");
    this.cancelStmt = db.prepare(`
      UPDATE task_status SET status = 'cancelled', finished_at = @now, lease_token = NULL, lease_expires_at = NULL, updated_at = @now
      WHERE task_id = @taskId AND status NOT IN ('completed','failed','cancelled')`);
    this.retryManualStmt = db.prepare(`
      UPDATE task_status SET status = @status, attempts = 0, run_at = @now, ready_at = CASE WHEN @status = 'pending' THEN @now END,
        finished_at = NULL, assigned_agent_id = NULL, lease_token = NULL, lease_expires_at = NULL, leases_lost = 0, reaped_token = NULL,
        progress = NULL, progress_message = NULL, result = NULL, updated_at = @now
      WHERE task_id = @taskId AND status IN ('failed','cancelled')`);
    this.blockedDepCount = db
      .prepare(
        `SELECT count(*) FROM task_dependencies d JOIN task_status s ON s.task_id = d.depends_on
         WHERE d.task_id = ? AND s.status IN ('failed','cancelled','blocked')`,
      )
      .pluck();
    this.edgeExists = db.prepare("SELECT 1 FROM task_dependencies WHERE task_id = ? AND depends_on = ?").pluck();
    this.insertEdge = db.prepare("INSERT INTO task_dependencies (task_id, depends_on) VALUES (?, ?)");
    this.addUnmet = db.prepare(`
      UPDATE task_status SET unmet_deps = unmet_deps + 1, updated_at = @now,
        status = CASE WHEN @blocked THEN 'blocked' WHEN status = 'pending' THEN 'waiting' ELSE status END,
        ready_at = CASE WHEN status = 'pending' THEN NULL ELSE ready_at END
      WHERE task_id = @taskId RETURNING status`);
  }

  private event(taskId: number | null, type: string, now: number, agentId: string | null, attempt: number | null, data?: unknown): void {
    this.transitions.event(taskId, type, now, agentId, attempt, data);
  }

  cancel(params: { taskId: number; reason?: string | undefined; by?: string | undefined; now: number }): { cancelled: number[]; blocked: number[] } {
    const row = this.requireTask(params.taskId);
    if (row.status === "completed" || row.status === "failed" || row.status === "cancelled") {
      throw new RosterError("INVALID_STATE", `task ${params.taskId} is ${row.status}; only unfinished tasks can be cancelled`, {
        details: { taskId: params.taskId, status: row.status },
      });
    }
    this.cancelStmt.run({ taskId: params.taskId, now: params.now });
    const blocked = this.graph.blockDependents(params.taskId, params.now);
    this.event(params.taskId, "task:cancelled", params.now, params.by ?? null, row.attempts, {
      from: row.status,
      reason: params.reason ?? null,
      blocked: blocked.length,
    });
    this.tx.emit("task:cancelled", { taskIds: [params.taskId], persona: row.persona_id });
    return { cancelled: [params.taskId], blocked };
  }

  retry(params: { taskId: number; by?: string | undefined; now: number }): { status: TaskState; unblocked: number[] } {
    const row = this.requireTask(params.taskId);
    if (row.status !== "failed" && row.status !== "cancelled") {
      throw new RosterError("INVALID_STATE", `task ${params.taskId} is ${row.status}; only failed or cancelled tasks can be retried`, {
        details: { taskId: params.taskId, status: row.status },
      });
    }
    let status: TaskState =
      row.unmet_deps === 0 ? "pending" : (this.blockedDepCount.get(params.taskId) as number) > 0 ? "blocked" : "waiting";
    this.retryManualStmt.run({ taskId: params.taskId, status, now: params.now });
    // A ready task of a human persona parks at once: the retry reports and records where it is.
    if (status === "pending" && this.graph.approvals.park([{ id: params.taskId, persona: row.persona_id }], params.now).length > 0) status = "awaiting_approval";
    this.event(params.taskId, "task:retried", params.now, params.by ?? null, 0, { from: row.status, status });
    const unblocked =
      status === "blocked"
        ? []
        : this.graph.unblockDependents(params.taskId, params.now, (id) => this.event(id, "task:unblocked", params.now, params.by ?? null, null, { by: params.taskId }));
    this.tx.emit("task:retried", { taskId: params.taskId, persona: row.persona_id });
    if (status === "pending") this.tx.emit("task:ready", { ids: [params.taskId], personas: [row.persona_id] });
    return { status, unblocked };
  }

  addDependency(params: { taskId: number; dependsOn: number; by?: string | undefined; now: number }): { status: TaskState } {
    const { taskId, dependsOn, now } = params;
    refuseSelfDependency(taskId, dependsOn);
    const task = this.requireTask(taskId);
    const dep = this.statusRow.get(dependsOn) as { status: TaskState } | undefined;
    refuseNewDependency(taskId, task, dependsOn, dep);
    if (this.edgeExists.get(taskId, dependsOn) !== undefined) return { status: task.status };
    refuseCycle(taskId, dependsOn, this.graph.dependencyPath(dependsOn, taskId));
    this.insertEdge.run(taskId, dependsOn);
    let status: TaskState = task.status;
    if (dep.status !== "completed") {
      const bad = blocksDependent(dep.status);
      status = (this.addUnmet.get({ taskId, now, blocked: bad ? 1 : 0 }) as { status: TaskState }).status;
      if (bad && task.status !== "blocked") this.graph.blockDependents(taskId, now);
    }
    this.event(taskId, "dependency:added", now, params.by ?? null, null, { dependsOn, status });
    return { status };
  }

  private requireTask(taskId: number): { status: TaskState; persona_id: string; attempts: number; unmet_deps: number } {
    const row = this.statusRow.get(taskId) as { status: TaskState; persona_id: string; attempts: number; unmet_deps: number } | undefined;
    if (row === undefined) throw new RosterError("TASK_NOT_FOUND", `taskId: task ${taskId} does not exist`, { details: { field: "taskId", taskId } });
    return row;
  }
}
