import { alreadyCompleted, leaseLossOf, toLineage, type LineageRow } from "../agent-reads.js";
import type { ValidatedTask } from "../input.js";
import type { CompleteOnceResult, CompleteParams, CompleteResult, EnqueueResult, SettlementResult, LeaseLoss, TaskLineage, TaskState } from "../types.js";
import type { Db, TransactionRunner } from "./database.js";
import type { Enqueuer } from "./enqueue.js";
import { taskNotFound } from "../rows.js";
import type { Transitions } from "./transitions.js";

/**
 * What an external agent (MCP) needs beside the supervisor's transitions: where a
 * task sits in its goal, a completion that can be asked again after a lost answer,
 * why a lease was lost, a result a page at a time, and a goal created with its
 * plan in one transaction. Statements prepared once; every method runs inside a
 * transaction the caller opened.
 */
export class AgentReads {
  private readonly briefs;
  private readonly keepToken;
  private readonly settledWith;
  private readonly childIds;
  private readonly statusOf;
  private readonly lastClaimBy;
  private readonly endingsAfter;
  private readonly resultPageStmt;

  constructor(
    db: Db,
    private readonly tx: TransactionRunner,
    private readonly transitions: Transitions,
    private readonly enqueuer: Enqueuer,
  ) {
    // Each task with its parent and root (root_id is NULL on a root: the task is its own root).
    this.briefs = db.prepare(`
      SELECT t.id, coalesce(t.root_id, t.id) AS root_id,
        p.id AS p_id, p.title AS p_title, p.description AS p_description, p.persona_id AS p_persona,
        r.id AS r_id, r.title AS r_title, r.description AS r_description, r.persona_id AS r_persona
      FROM tasks t LEFT JOIN tasks p ON p.id = t.parent_id LEFT JOIN tasks r ON r.id = t.root_id
      WHERE t.id IN (SELECT value FROM json_each(?))`);
    // A completed row keeps the token that completed it (fencing only looks at leased
    // rows, so it grants nothing): the same token asked again is answered, not refused.
    this.keepToken = db.prepare("UPDATE task_status SET lease_token = @leaseToken WHERE task_id = @taskId AND status = 'completed'");
    this.settledWith = db.prepare("SELECT result FROM task_status WHERE task_id = @taskId AND lease_token = @leaseToken AND status = 'completed'");
    this.childIds = db.prepare("SELECT id FROM tasks WHERE parent_id = ? ORDER BY id").pluck();
    this.statusOf = db.prepare("SELECT status, assigned_agent_id AS holder FROM task_status WHERE task_id = ?");
    this.lastClaimBy = db.prepare(
      "SELECT max(id) FROM task_events WHERE task_id = @taskId AND type = 'task:claimed' AND (@agentId IS NULL OR agent_id = @agentId)",
    ).pluck();
    // The first event after that claim that ended or took over its lease.
    this.endingsAfter = db.prepare(`
      SELECT type, at, agent_id FROM task_events
      WHERE task_id = @taskId AND id > @after AND type IN
        ('lease:expired','task:cancelled','task:completed','task:released','task:failed','task:retrying','task:claimed','input:requested')
      ORDER BY id LIMIT 1`);
    this.resultPageStmt = db.prepare(
      "SELECT s.status, length(s.result) AS total, substr(s.result, @offset + 1, @limit) AS text FROM task_status s WHERE s.task_id = @taskId",
    );
  }

  lineage(taskIds: readonly number[]): TaskLineage[] {
    return toLineage(taskIds, this.briefs.all(JSON.stringify(taskIds)) as LineageRow[]);
  }

  /** complete(), keeping the token on the completed row; the same token again answers ALREADY_COMPLETED. */
  /** `complete` is the store's one settle path for this completion (invalid output refused). */
  completeOnce(params: CompleteParams, complete: () => SettlementResult): CompleteOnceResult {
    const done = complete() as CompleteResult;
    if (done.ok) {
      this.keepToken.run({ taskId: params.taskId, leaseToken: params.leaseToken });
      return done;
    }
    const row = this.settledWith.get({ taskId: params.taskId, leaseToken: params.leaseToken }) as { result: string | null } | undefined;
    if (row === undefined) return done;
    return alreadyCompleted(row.result, this.childIds.all(params.taskId) as number[]);
  }

  /**
   * Why a lease on this task is no longer current: the first event that ended or took
   * over the last claim by `agentId` (any agent's last claim when null).
   */
  leaseLoss(params: { taskId: number; agentId?: string | null | undefined }): LeaseLoss {
    const task = this.statusOf.get(params.taskId) as { status: TaskState; holder: string | null } | undefined;
    if (task === undefined) throw taskNotFound(params.taskId);
    const claim = this.lastClaimBy.get({ taskId: params.taskId, agentId: params.agentId ?? null }) as number | null;
    if (claim === null) return leaseLossOf(task, params.agentId, false, undefined);
    return leaseLossOf(task, params.agentId, true, this.endingsAfter.get({ taskId: params.taskId, after: claim }) as { type: string; at: number; agent_id: string | null } | undefined);
  }

  /** A slice of a task's result as JSON text, in characters; `totalChars` 0 when it has none. */
  resultPage(params: { taskId: number; offset: number; limit: number }): { status: TaskState; totalChars: number; text: string } {
    const row = this.resultPageStmt.get(params) as { status: TaskState; total: number | null; text: string | null } | undefined;
    if (row === undefined) throw taskNotFound(params.taskId);
    return { status: row.status, totalChars: row.total ?? 0, text: row.text ?? "" };
  }

  /**
   * A goal and its plan in one transaction: the goal, then the tasks as its children,
   * then the goal made to wait for every one of them, so it is never claimable before
   * its plan is done. A goal whose idempotencyKey exists returns it and writes nothing.
   */
  enqueueGoal(goal: ValidatedTask, tasks: ValidatedTask[], options: { parentId: number | null; createdBy: string | null; now: number }): EnqueueResult & { goalId: number } {
    const head = this.enqueuer.write([goal], options);
    const goalId = head.ids[0]!;
    if (head.created.length === 0) return { goalId, ids: this.childIds.all(goalId) as number[], refs: {} };
    const plan = this.enqueuer.write(tasks, { ...options, parentId: goalId });
    for (const id of plan.ids) this.transitions.commands.addDependency({ taskId: goalId, dependsOn: id, by: options.createdBy ?? undefined, now: options.now });
    this.tx.emit("task:enqueued", {
      ids: [goalId, ...plan.created],
      personas: [...head.personas, ...plan.personas],
      ready: plan.statuses.filter((s) => s === "pending").length,
    });
    return { goalId, ids: plan.ids, refs: plan.refs };
  }
}
