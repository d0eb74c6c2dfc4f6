/**
 * What an external agent (MCP) reads beside the supervisor's transitions, as both stores
 * answer it, without the database: a task's lineage from its row, why a lease was lost
 * from the first event that ended the agent's last claim, and a completion asked again.
 * SQLite (src/store/sqlite/agent-reads.ts) and PostgreSQL (src/store/postgres/agent-reads.ts)
 * each read the rows with their own SQL.
 */
import { parseJson } from "./rows.js";
import type { CompleteOnceResult, LeaseLoss, LeaseLossReason, TaskBrief, TaskLineage, TaskState } from "./types.js";

/** A task with its parent's and its root's brief, as the lineage read returns it. */
export interface LineageRow {
  id: number;
  root_id: number;
  p_id: number | null;
  p_title: string | null;
  p_description: string | null;
  p_persona: string | null;
  r_id: number | null;
  r_title: string | null;
  r_description: string | null;
  r_persona: string | null;
}

/** The lineage of each asked task that exists, in the order asked. */
export function toLineage(taskIds: readonly number[], rows: readonly LineageRow[]): TaskLineage[] {
  const brief = (id: number | null, title: string | null, description: string | null, persona: string | null): TaskBrief | null =>
    id === null ? null : { id, title: title ?? "", description: description ?? "", persona: persona ?? "" };
  const byId = new Map(rows.map((row) => [row.id, row]));
  return taskIds.flatMap((taskId) => {
    const row = byId.get(taskId);
    if (row === undefined) return [];
    return [{ taskId, rootId: row.root_id, parent: brief(row.p_id, row.p_title, row.p_description, row.p_persona), root: brief(row.r_id, row.r_title, row.r_description, row.r_persona) }];
  });
}

/** The events that end or take over a claim's lease, and what each says of the loss. */
export const LEASE_LOSS_REASONS: Readonly<Record<string, LeaseLossReason>> = {
  "lease:expired": "expired",
  "task:cancelled": "cancelled",
  "task:completed": "completed",
  "task:released": "released",
  "task:failed": "failed",
  "task:retrying": "failed",
  "task:claimed": "taken",
  // The attempt parked on a question (request_input, ctx.askHuman): its lease was given back.
  "input:requested": "released",
};

/**
 * Why a lease is no longer current, from the task's status, whether the agent's last
 * claim was found, and the first event after it that ended or took over its lease.
 */
export function leaseLossOf(
  task: { status: TaskState; holder: string | null },
  asker: string | null | undefined,
  claimFound: boolean,
  end: { type: string; at: number; agent_id: string | null } | undefined,
): LeaseLoss {
  const status = task.status;
  if (!claimFound) return { reason: "unknown", status, at: null, by: null };
  // Nothing ended that claim: another agent holds the task now (taken), or the asker still
  // does and the token it gave was never this lease's (unknown: it must not drop the task).
  if (end === undefined) {
    const taken = (status === "claimed" || status === "in_progress") && !(asker != null && task.holder === asker);
    return { reason: taken ? "taken" : "unknown", status, at: null, by: null };
  }
  return { reason: LEASE_LOSS_REASONS[end.type] ?? "unknown", status, at: end.at, by: end.agent_id };
}

/** A completion asked again with the token that completed the task: its recorded result and children. */
export function alreadyCompleted(resultJson: string | null, childIds: number[]): CompleteOnceResult {
  return { ok: false, code: "ALREADY_COMPLETED", result: parseJson(resultJson), childIds };
}
