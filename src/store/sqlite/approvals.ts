import { approvalRequest, approvalRequestedData, isHumanConfigJson, personasOf, type GateCandidate } from "../approval-gate.js";
import type { Db } from "./database.js";

/**
 * The approval gate on SQLite (src/store/approval-gate.ts decides): called, inside the
 * caller's transaction, by every write that makes tasks pending, with those tasks. A write
 * whose tasks' personas are not human costs one primary-key read per distinct persona.
 */
export class SqliteApprovalGate {
  private readonly personaConfig;
  private readonly candidates;
  private readonly parkStmt;
  private readonly insertRequest;
  private readonly insertEvent;

  constructor(db: Db) {
    this.personaConfig = db.prepare("SELECT config FROM personas WHERE id = ?").pluck();
    // The tasks given that are pending now, with what their requests are made of. Rows: task ids (@ids).
    this.candidates = db.prepare(`
      SELECT s.task_id, s.attempts, t.title, t.description, t.payload, p.config
      FROM task_status s JOIN tasks t ON t.id = s.task_id JOIN personas p ON p.id = s.persona_id
      WHERE s.task_id IN (SELECT value FROM json_each(@ids)) AND s.status = 'pending'
      ORDER BY s.task_id`);
    this.parkStmt = db.prepare("UPDATE task_status SET status = 'awaiting_approval', ready_at = NULL WHERE task_id = ? AND status = 'pending'");
    this.insertRequest = db.prepare(`
      INSERT INTO human_requests (task_id, kind, question, asked_at, deadline_at, default_outcome)
      VALUES (@taskId, 'approval', @question, @now, @deadlineAt, @defaultOutcome)`);
    this.insertEvent = db.prepare(
      "INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES (@taskId, 'approval:requested', @now, NULL, @attempt, @data)",
    );
  }

  /** Parks those of `tasks` (just made pending) whose persona is human; returns their ids. */
  park(tasks: ReadonlyArray<{ id: number; persona: string }>, now: number): number[] {
    if (tasks.length === 0) return [];
    const human = personasOf(tasks).filter((persona) => isHumanConfigJson(this.personaConfig.get(persona) as string | undefined));
    if (human.length === 0) return [];
    const ids = tasks.filter((t) => human.includes(t.persona)).map((t) => t.id);
    const parked: number[] = [];
    for (const row of this.candidates.all({ ids: JSON.stringify(ids) }) as Array<GateCandidate & { task_id: number; attempts: number }>) {
      if (this.parkStmt.run(row.task_id).changes !== 1) continue;
      const request = approvalRequest(row, now);
      const requestId = Number(
        this.insertRequest.run({ taskId: row.task_id, question: request.question, now, deadlineAt: request.deadlineAt, defaultOutcome: request.defaultOutcome }).lastInsertRowid,
      );
      this.insertEvent.run({ taskId: row.task_id, now, attempt: row.attempts, data: JSON.stringify(approvalRequestedData(requestId, request)) });
      parked.push(row.task_id);
    }
    return parked;
  }
}
