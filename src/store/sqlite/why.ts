import { taskNotFound } from "../rows.js";
import type { TaskState, WhyReason, WhyReport } from "../types.js";
import { WHY_HOLDERS_MAX, explainTask, isParked, whyFacts, type WhyRows } from "../why.js";
import type { Db } from "./database.js";
import type { HumanStatements } from "./humans.js";

/**
 * A gate's reasons for a task (budgets, breakers, provider pauses — the economics
 * work adds its readers here); each runs in the read transaction of explain().
 */
export type WhyGateReader = (task: { id: number; persona: string; status: TaskState }, now: number) => WhyReason[];

/** The facts behind `roster why`, read in one transaction (a handful of index seeks). */
export class WhyReads {
  private readonly taskRow;
  private readonly unmetStmt;
  private readonly blockersStmt;
  private readonly runAtEvents;
  private readonly cancelEvent;
  private readonly personaRow;
  private readonly holdersStmt;
  private readonly supervisorsStmt;

  constructor(
    db: Db,
    private readonly humans: HumanStatements,
    private readonly gates: readonly WhyGateReader[] = [],
  ) {
    this.taskRow = db.prepare(`
      SELECT t.id, t.title, t.persona_id, s.status, s.run_at, s.ready_at, s.attempts, s.max_attempts, s.assigned_agent_id,
             s.lease_expires_at, s.finished_at, s.last_error
      FROM tasks t JOIN task_status s ON s.task_id = t.id WHERE t.id = ?`);
    this.unmetStmt = db.prepare(`
      SELECT t.id, t.title, s.status FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on JOIN task_status s ON s.task_id = d.depends_on
      WHERE d.task_id = ? AND s.status <> 'completed' ORDER BY t.id`);
    // Upstream through blocked tasks only, to the failed or cancelled ones that block them.
    this.blockersStmt = db.prepare(`
      WITH RECURSIVE up(id) AS (
        SELECT depends_on FROM task_dependencies WHERE task_id = @taskId
        UNION
        SELECT d.depends_on FROM up JOIN task_status s ON s.task_id = up.id AND s.status = 'blocked'
          JOIN task_dependencies d ON d.task_id = up.id
      )
      SELECT t.id, t.title, s.status, s.last_error FROM up JOIN tasks t ON t.id = up.id JOIN task_status s ON s.task_id = up.id
      WHERE s.status IN ('failed','cancelled') ORDER BY t.id LIMIT 100`);
    this.runAtEvents = db.prepare(`
      SELECT type, attempt, at, data FROM task_events
      WHERE task_id = ? AND type IN ('task:retrying','task:released','task:enqueued','task:retried','input:answered')
      ORDER BY id DESC LIMIT 1`);
    this.cancelEvent = db.prepare("SELECT agent_id, at, data FROM task_events WHERE task_id = ? AND type = 'task:cancelled' ORDER BY id DESC LIMIT 1");
    this.personaRow = db.prepare(
      "SELECT config ->> '$.concurrency' AS concurrency, config ->> '$.adapter.kind' AS kind, config ->> '$.external' AS external, retired_at FROM personas WHERE id = ?",
    );
    this.holdersStmt = db.prepare(`
      SELECT task_id, assigned_agent_id, COUNT(*) OVER () AS held FROM task_status INDEXED BY task_status_leased
      WHERE status IN ('claimed','in_progress') AND persona_id = ? ORDER BY task_id LIMIT ${WHY_HOLDERS_MAX}`);
    this.supervisorsStmt = db.prepare("SELECT id, name FROM agents WHERE status = 'active' AND kind = 'supervisor' ORDER BY id");
  }

  explain(taskId: number, now: number): WhyReport {
    const row = this.taskRow.get(taskId) as WhyRows["task"] | undefined;
    if (row === undefined) throw taskNotFound(taskId);
    const facts = whyFacts({
      task: row,
      unmet: this.unmetStmt.all(taskId) as WhyRows["unmet"],
      blockers: row.status === "blocked" ? (this.blockersStmt.all({ taskId }) as WhyRows["blockers"]) : [],
      cause: this.runAtEvents.get(taskId) as WhyRows["cause"],
      cancel: this.cancelEvent.get(taskId) as WhyRows["cancel"],
      persona: this.personaRow.get(row.persona_id) as WhyRows["persona"],
      holders: this.holdersStmt.all(row.persona_id) as WhyRows["holders"],
      supervisors: this.supervisorsStmt.all() as WhyRows["supervisors"],
      request: isParked(row.status) ? this.humans.open(taskId) : null,
    });
    const gates = this.gates.flatMap((gate) => gate({ id: row.id, persona: row.persona_id, status: row.status }, now));
    return explainTask(facts, now, gates);
  }
}
