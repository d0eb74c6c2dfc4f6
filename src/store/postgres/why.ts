import { taskNotFound } from "../rows.js";
import type { HumanRequest, TaskState, WhyReason, WhyReport } from "../types.js";
import { WHY_HOLDERS_MAX, explainTask, isParked, whyFacts, type WhyRows } from "../why.js";
import type { Tx } from "./database.js";

type Q = Pick<Tx, "rows" | "one">;

/** Every request of a task (asked and answered), oldest first: why reads the open one. */
export type RequestsReader = (q: Q, taskId: number) => Promise<HumanRequest[]>;

/** A task's economic gate reasons (held budget, closed persona gates, full concurrency key): PgGates.whyReasons. */
export type GateReasonsReader = (q: Q, task: { id: number; persona: string; status: TaskState }, now: number) => Promise<WhyReason[]>;

/**
 * The facts behind `roster why` on PostgreSQL, the same as src/store/sqlite/why.ts
 * gathers, worded by the shared src/store/why.ts, with a parked task's open request and
 * the economic gates that hold it.
 */
export async function explain(q: Q, taskId: number, now: number, requests: RequestsReader, gates?: GateReasonsReader): Promise<WhyReport> {
  const row = await q.one<WhyRows["task"]>(
    `SELECT t.id, t.title, t.persona_id, s.status, s.run_at, s.ready_at, s.attempts, s.max_attempts, s.assigned_agent_id,
            s.lease_expires_at, s.finished_at, s.last_error
     FROM tasks t JOIN task_status s ON s.task_id = t.id WHERE t.id = $1`,
    [taskId],
  );
  if (row === undefined) throw taskNotFound(taskId);
  const unmet = await q.rows<WhyRows["unmet"][number]>(
    `SELECT t.id, t.title, s.status FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on JOIN task_status s ON s.task_id = d.depends_on
     WHERE d.task_id = $1 AND s.status <> 'completed' ORDER BY t.id`,
    [taskId],
  );
  // Upstream through blocked tasks only, to the failed or cancelled ones that block them.
  const blockers =
    row.status !== "blocked"
      ? []
      : await q.rows<WhyRows["blockers"][number]>(
          `WITH RECURSIVE up(id) AS (
             SELECT depends_on FROM task_dependencies WHERE task_id = $1
             UNION
             SELECT d.depends_on FROM up JOIN task_status s ON s.task_id = up.id AND s.status = 'blocked'
               JOIN task_dependencies d ON d.task_id = up.id)
           SELECT t.id, t.title, s.status, s.last_error FROM up JOIN tasks t ON t.id = up.id JOIN task_status s ON s.task_id = up.id
           WHERE s.status IN ('failed','cancelled') ORDER BY t.id LIMIT 100`,
          [taskId],
        );
  const cause = await q.one<NonNullable<WhyRows["cause"]>>(
    `SELECT type, attempt, at, data FROM task_events
     WHERE task_id = $1 AND type IN ('task:retrying','task:released','task:enqueued','task:retried','input:answered')
     ORDER BY id DESC LIMIT 1`,
    [taskId],
  );
  const cancel = await q.one<NonNullable<WhyRows["cancel"]>>(
    "SELECT agent_id, at, data FROM task_events WHERE task_id = $1 AND type = 'task:cancelled' ORDER BY id DESC LIMIT 1",
    [taskId],
  );
  const persona = await q.one<NonNullable<WhyRows["persona"]>>(
    "SELECT (config::jsonb ->> 'concurrency')::int AS concurrency, config::jsonb -> 'adapter' ->> 'kind' AS kind, (config::jsonb ->> 'external')::boolean AS external, retired_at FROM personas WHERE id = $1",
    [row.persona_id],
  );
  const holders = await q.rows<WhyRows["holders"][number]>(
    `SELECT task_id, assigned_agent_id, COUNT(*) OVER () AS held FROM task_status WHERE status IN ('claimed','in_progress') AND persona_id = $1 ORDER BY task_id LIMIT ${WHY_HOLDERS_MAX}`,
    [row.persona_id],
  );
  const supervisors = await q.rows<WhyRows["supervisors"][number]>("SELECT id, name FROM agents WHERE status = 'active' AND kind = 'supervisor' ORDER BY id");
  let request: HumanRequest | null = null;
  if (isParked(row.status)) {
    const open = await q.one<{ id: number }>("SELECT id FROM human_requests WHERE task_id = $1 AND outcome IS NULL ORDER BY id DESC LIMIT 1", [taskId]);
    request = open === undefined ? null : ((await requests(q, taskId)).find((r) => r.id === open.id) ?? null);
  }
  const facts = whyFacts({ task: row, unmet, blockers, cause, cancel, persona, holders, supervisors, request });
  return explainTask(facts, now, gates === undefined ? [] : await gates(q, { id: row.id, persona: row.persona_id, status: row.status }, now));
}
