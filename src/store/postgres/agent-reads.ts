import { LEASE_LOSS_REASONS, alreadyCompleted, leaseLossOf, toLineage, type LineageRow } from "../agent-reads.js";
import type { ValidatedTask } from "../input.js";
import type { CompleteOnceResult, CompleteParams, CompleteResult, EnqueueResult, SettlementResult, LeaseLoss, TaskLineage, TaskState } from "../types.js";
import type { Tx } from "./database.js";
import { writeBatch } from "./enqueue.js";
import { taskNotFound } from "../rows.js";
import type { PgTransitions } from "./transitions.js";

type Q = Pick<Tx, "rows" | "one">;

/**
 * What an external agent (MCP) needs beside the supervisor's transitions, on
 * PostgreSQL (as src/store/sqlite/agent-reads.ts): where a task sits in its goal, a
 * completion that can be asked again after a lost answer, why a lease was lost, a
 * result a page at a time, and a goal created with its plan in one transaction.
 */
export async function lineage(q: Q, taskIds: readonly number[]): Promise<TaskLineage[]> {
  const ids = taskIds.filter((id) => Number.isSafeInteger(id));
  if (ids.length === 0) return [];
  const rows = await q.rows<LineageRow>(
    `SELECT t.id, coalesce(t.root_id, t.id) AS root_id,
       p.id AS p_id, p.title AS p_title, p.description AS p_description, p.persona_id AS p_persona,
       r.id AS r_id, r.title AS r_title, r.description AS r_description, r.persona_id AS r_persona
     FROM tasks t LEFT JOIN tasks p ON p.id = t.parent_id LEFT JOIN tasks r ON r.id = t.root_id
     WHERE t.id = ANY($1::bigint[])`,
    [ids],
  );
  return toLineage(taskIds, rows);
}

/** complete(), keeping the token on the completed row (fencing only looks at leased rows); the same token again answers ALREADY_COMPLETED. */
/** `complete` is the store's one settle path for this completion (invalid output refused). */
export async function completeOnce(tx: Tx, complete: () => Promise<SettlementResult>, params: CompleteParams): Promise<CompleteOnceResult> {
  const done = (await complete()) as CompleteResult;
  if (done.ok) {
    await tx.run("UPDATE task_status SET lease_token = $2 WHERE task_id = $1 AND status = 'completed'", [params.taskId, params.leaseToken]);
    return done;
  }
  const row = await tx.one<{ result: string | null }>("SELECT result FROM task_status WHERE task_id = $1 AND lease_token = $2 AND status = 'completed'", [
    params.taskId,
    params.leaseToken,
  ]);
  if (row === undefined) return done;
  const children = await tx.rows<{ id: number }>("SELECT id FROM tasks WHERE parent_id = $1 ORDER BY id", [params.taskId]);
  return alreadyCompleted(row.result, children.map((c) => c.id));
}

/** Why a lease on this task is no longer current: the first event that ended or took over the last claim by `agentId` (any agent's when null). */
export async function leaseLoss(q: Q, params: { taskId: number; agentId?: string | null | undefined }): Promise<LeaseLoss> {
  const row = await q.one<{ status: TaskState; holder: string | null }>("SELECT status, assigned_agent_id AS holder FROM task_status WHERE task_id = $1", [params.taskId]);
  if (row === undefined) throw taskNotFound(params.taskId);
  const claim = (
    await q.one<{ id: number | null }>("SELECT max(id) AS id FROM task_events WHERE task_id = $1 AND type = 'task:claimed' AND ($2::text IS NULL OR agent_id = $2)", [
      params.taskId,
      params.agentId ?? null,
    ])
  )?.id;
  if (claim === null || claim === undefined) return leaseLossOf(row, params.agentId, false, undefined);
  const end = await q.one<{ type: string; at: number; agent_id: string | null }>(
    `SELECT type, at, agent_id FROM task_events
     WHERE task_id = $1 AND id > $2 AND type = ANY($3::text[]) ORDER BY id LIMIT 1`,
    [params.taskId, claim, Object.keys(LEASE_LOSS_REASONS)],
  );
  return leaseLossOf(row, params.agentId, true, end);
}

/** Characters [offset, offset + limit) of the task's result as JSON text (as written), and its length in characters. */
export async function resultPage(q: Q, params: { taskId: number; offset: number; limit: number }): Promise<{ status: TaskState; totalChars: number; text: string }> {
  const row = await q.one<{ status: TaskState; total: number | null; text: string | null }>(
    "SELECT status, char_length(result) AS total, substr(result, $2::int + 1, $3::int) AS text FROM task_status WHERE task_id = $1",
    [params.taskId, params.offset, params.limit],
  );
  if (row === undefined) throw taskNotFound(params.taskId);
  return { status: row.status, totalChars: row.total ?? 0, text: row.text ?? "" };
}

/**
 * A goal and its plan in one transaction: the goal, then the tasks as its children,
 * then the goal made to wait for every one of them. A goal whose idempotencyKey
 * exists returns it and writes nothing.
 */
export async function enqueueGoal(
  tx: Tx,
  transitions: PgTransitions,
  goal: ValidatedTask,
  tasks: ValidatedTask[],
  options: { parentId: number | null; createdBy: string | null; now: number },
): Promise<EnqueueResult & { goalId: number }> {
  const head = await writeBatch(tx, [goal], options);
  const goalId = head.ids[0]!;
  if (head.created.length === 0) {
    const children = await tx.rows<{ id: number }>("SELECT id FROM tasks WHERE parent_id = $1 ORDER BY id", [goalId]);
    return { goalId, ids: children.map((c) => c.id), refs: {} };
  }
  const plan = await writeBatch(tx, tasks, { ...options, parentId: goalId });
  for (const id of plan.ids) await transitions.commands.addDependency(tx, { taskId: goalId, dependsOn: id, by: options.createdBy ?? undefined, now: options.now });
  tx.emit("task:enqueued", { ids: [goalId, ...plan.created], personas: [...head.personas, ...plan.personas], ready: plan.statuses.filter((s) => s === "pending").length });
  return { goalId, ids: plan.ids, refs: plan.refs };
}
