import { HUMAN_ADAPTER_KIND, approvalRequest, approvalRequestedData, type GateCandidate } from "../approval-gate.js";
import { prepared, type Tx } from "./database.js";

/**
 * The tasks given that are pending now and whose persona is human, with what their requests
 * are made of, locked (another host may be readying or claiming the same rows). Usually none:
 * one round trip that returns nothing. Params: $1 task ids, $2 the human adapter kind.
 */
const GATE_CANDIDATES_SQL = prepared(`
      SELECT s.task_id, s.attempts, t.title, t.description, t.payload, p.config
      FROM task_status s JOIN tasks t ON t.id = s.task_id JOIN personas p ON p.id = s.persona_id
      WHERE s.task_id = ANY($1::bigint[]) AND s.status = 'pending' AND p.config::jsonb #>> '{adapter,kind}' = $2
      ORDER BY s.task_id
      FOR UPDATE OF s`);

/**
 * The approval gate on PostgreSQL (src/store/approval-gate.ts decides), inside the caller's
 * transaction: of `tasks` (just made pending), those whose persona is human park in
 * awaiting_approval with a request and an approval:requested event. Returns their ids.
 * Enqueue, which has its personas' configs in hand, calls it only with tasks of human
 * personas (so usually not at all).
 */
export async function parkForApproval(tx: Tx, tasks: ReadonlyArray<{ id: number }>, now: number): Promise<number[]> {
  if (tasks.length === 0) return [];
  const rows = await tx.rows<GateCandidate & { task_id: number; attempts: number }>(GATE_CANDIDATES_SQL, [tasks.map((t) => t.id), HUMAN_ADAPTER_KIND]);
  const parked: number[] = [];
  for (const row of rows) {
    if ((await tx.run("UPDATE task_status SET status = 'awaiting_approval', ready_at = NULL WHERE task_id = $1 AND status = 'pending'", [row.task_id])) !== 1) continue;
    const request = approvalRequest(row, now);
    const inserted = await tx.one<{ id: number }>(
      `INSERT INTO human_requests (task_id, kind, question, asked_at, deadline_at, default_outcome)
       VALUES ($1, 'approval', $2, $3, $4, $5) RETURNING id`,
      [row.task_id, request.question, now, request.deadlineAt, request.defaultOutcome],
    );
    await tx.run("INSERT INTO task_events (task_id, type, at, agent_id, attempt, data) VALUES ($1, 'approval:requested', $2, NULL, $3, $4)", [
      row.task_id,
      now,
      row.attempts,
      JSON.stringify(approvalRequestedData(Number(inserted!.id), request)),
    ]);
    parked.push(row.task_id);
  }
  return parked;
}
