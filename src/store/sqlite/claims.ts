import { newLeaseToken } from "../lease-token.js";
import { LEASE_MS_DEFAULT } from "../../policy/retry.js";
import { byClaimOrder, claimedTask, dependencyResult, type ClaimDetail, type ClaimRow, type DependencyRow } from "../claimed.js";
import type { ClaimParams, ClaimedTask, DependencyResult } from "../types.js";
import type { EconomicsStatements, SqliteClaimGate } from "./budgets.js";
import type { Db, TransactionRunner } from "./database.js";
import { rowObjects } from "./row-objects.js";
import { EventRows } from "./event-rows.js";
import { TaskCounts } from "./task-counts.js";

export const CLAIM_LIMIT_MAX = 1_000;

/**
 * What a claim statement returns per row: the lease, and the last error (the previous attempt)
 * from the row it already holds. Whether a task has dependencies or answered questions is not
 * asked per row: Claims.claimed reads both for the whole batch, and only when the database
 * has any (two per-row EXISTS seeks were about 0.9 us a claimed task, issue 14).
 */
const CLAIM_RETURNING = `RETURNING task_id, attempts, max_attempts, lease_token, lease_expires_at, ready_at, run_at, priority, last_error`;

/** A claimed row as CLAIM_RETURNING gives it. */
type ClaimedRow = ClaimRow & { last_error: string | null };

/**
 * docs/ARCHITECTURE.md rules 2, 3: the claim is one statement and one seek into the partial claim
 * index task_status_claim (persona, priority DESC, run_at, task_id) WHERE pending.
 * Exported so the SQLite-only plan test explains this exact text.
 * Params: @agentId @token @leaseMs @now @persona @limit.
 * `LIMIT @limit + 0`, not `LIMIT @limit`: SQLite plans `IN (SELECT … LIMIT ?)` for the value
 * bound, so every new binding of a bare parameter (every execution: better-sqlite3 binds each
 * call) recompiled the whole statement, its triggers included, before running it: about 630k
 * instructions a claim of several tasks under cachegrind, more than the claim of 50 itself.
 * An expression is not planned for its value.
 */
export const CLAIM_SQL = `
      UPDATE task_status SET
        status = 'claimed', attempts = attempts + 1, assigned_agent_id = @agentId,
        lease_token = @token || '.' || task_id, lease_ms = @leaseMs, lease_expires_at = @now + @leaseMs,
        claimed_at = @now, started_at = NULL, progress = NULL, progress_message = NULL, updated_at = @now
      WHERE task_id IN (
        SELECT task_id FROM task_status
        WHERE status = 'pending' AND persona_id = @persona AND run_at <= @now
        ORDER BY priority DESC, run_at, task_id
        LIMIT @limit + 0)
      ${CLAIM_RETURNING}`;

/**
 * The claim of one named task (an MCP agent that skipped others): the same row
 * changes as CLAIM_SQL, only if the task is ready now. A primary-key seek.
 * Params: @agentId @token @leaseMs @now @taskId.
 */
export const CLAIM_ONE_SQL = `
      UPDATE task_status SET
        status = 'claimed', attempts = attempts + 1, assigned_agent_id = @agentId,
        lease_token = @token || '.' || task_id, lease_ms = @leaseMs, lease_expires_at = @now + @leaseMs,
        claimed_at = @now, started_at = NULL, progress = NULL, progress_message = NULL, updated_at = @now
      WHERE task_id = @taskId AND status = 'pending' AND run_at <= @now
      ${CLAIM_RETURNING}`;

/** The claimed tasks' details, by id (a JSON array); last_error is filled from the claim's own row (CLAIM_RETURNING). */
export const CLAIMED_DETAILS_SQL = `
      SELECT t.id, t.title, t.description, t.persona_id, t.payload, t.parent_id, t.priority, t.timeout_ms, NULL AS last_error
      FROM tasks t WHERE t.id IN (SELECT value FROM json_each(?))`;

/**
 * CLAIM_SQL for when some tasks or goals are held (their budget is spent) or some
 * concurrency key is at its limit: the same seek, skipping those rows by three
 * primary-key probes each. Only used while budget_holds has rows or a key is full,
 * so the plain claim stays as it is (docs/economics.md).
 */
export const CLAIM_SKIPPING_HELD_SQL = CLAIM_SQL.replace(
  "WHERE status = 'pending' AND persona_id = @persona AND run_at <= @now",
  `WHERE status = 'pending' AND persona_id = @persona AND run_at <= @now
          AND NOT EXISTS (SELECT 1 FROM budget_holds h WHERE h.scope = 'task' AND h.key = task_status.task_id)
          AND NOT EXISTS (SELECT 1 FROM tasks t JOIN budget_holds h ON h.scope = 'goal' AND h.key = coalesce(t.root_id, t.id)
                          WHERE t.id = task_status.task_id)
          AND NOT EXISTS (SELECT 1 FROM task_keys tk JOIN concurrency_keys k ON k.key = tk.key
                          WHERE tk.task_id = task_status.task_id AND k.running >= k.max_running)`,
);

/**
 * A claim statement for one task (limit 1: an MCP agent's claim, `roster run`, a supervisor with
 * one free slot): the same seek and the same row changes, the row compared by `=` with the
 * scalar subquery instead of `IN` (subquery), for which SQLite builds an ephemeral list at
 * every execution: about 20 us, more than the rest of a one-row claim without triggers
 * (bench/RESULTS.md, history, 2026-12-07).
 */
function firstOnly(sql: string): string {
  if (!sql.includes("WHERE task_id IN (")) throw new Error("claim statement without its IN (subquery)");
  return sql.replace("WHERE task_id IN (", "WHERE task_id = (");
}
/** CLAIM_SQL for one task (run with @limit 1). Params as CLAIM_SQL. */
export const CLAIM_FIRST_SQL = firstOnly(CLAIM_SQL);
/** CLAIM_SKIPPING_HELD_SQL for one task (run with @limit 1). */
export const CLAIM_FIRST_SKIPPING_HELD_SQL = firstOnly(CLAIM_SKIPPING_HELD_SQL);

/**
 * The claim (docs/ARCHITECTURE.md, "One path per transition"): a persona's best ready tasks in
 * one statement, or one named task, behind the economic gates; the claimed tasks' details,
 * dependency results and previous attempt, their task:claimed events and notification. Runs
 * inside a transaction the caller opened.
 */
export class Claims {
  private readonly claimSkippingHeldStmt;
  private readonly claimStmt;
  private readonly claimFirstStmt;
  private readonly claimFirstSkippingHeldStmt;
  private readonly claimOneStmt;
  private readonly personaOf;
  private readonly claimedDetails;
  private readonly dependencyResults;
  private readonly insertClaimEvents;
  private readonly claimedDetailOne;
  private readonly insertClaimEvent;
  /** Whether any task has dependencies, and whether any person was ever asked anything: a claim reads either only then. */
  private readonly anyDependency;
  private readonly anyHumanRequest;
  /** Claims are counted in task_counts by their statement, not by the trigger (task-counts.ts). */
  private readonly counts: TaskCounts;

  constructor(
    db: Db,
    private readonly tx: TransactionRunner,
    private readonly gates: EconomicsStatements,
    /** Attaches to claimed tasks the questions their earlier attempts asked, with the answers (HumanStatements.withInputs). */
    private readonly withInputs: (claimed: ClaimedTask[]) => unknown,
  ) {
    // docs/ARCHITECTURE.md rules 2, 3: one statement, one seek into the partial claim index.
    this.counts = new TaskCounts(db);
    // Rows read raw and made objects in JS (row-objects.ts).
    this.claimStmt = rowObjects<ClaimedRow>(db.prepare(CLAIM_SQL));
    this.claimSkippingHeldStmt = rowObjects<ClaimedRow>(db.prepare(CLAIM_SKIPPING_HELD_SQL));
    this.claimFirstStmt = rowObjects<ClaimedRow>(db.prepare(CLAIM_FIRST_SQL));
    this.claimFirstSkippingHeldStmt = rowObjects<ClaimedRow>(db.prepare(CLAIM_FIRST_SKIPPING_HELD_SQL));
    this.claimOneStmt = rowObjects<ClaimedRow>(db.prepare(CLAIM_ONE_SQL));
    this.personaOf = db.prepare("SELECT persona_id FROM task_status WHERE task_id = ?").pluck();
    this.claimedDetails = rowObjects<ClaimDetail & { id: number }>(db.prepare(CLAIMED_DETAILS_SQL));
    // The one-task claim's twins of claimedDetails and insertClaimEvents: a primary-key read and one
    // VALUES row instead of a JSON array (about 3 us less each); the same rows and event text.
    const detailOne = CLAIMED_DETAILS_SQL.replace("WHERE t.id IN (SELECT value FROM json_each(?))", "WHERE t.id = ?");
    if (detailOne === CLAIMED_DETAILS_SQL) throw new Error("CLAIMED_DETAILS_SQL without its id list");
    this.claimedDetailOne = rowObjects<ClaimDetail & { id: number }>(db.prepare(detailOne));
    this.insertClaimEvent = db.prepare(`
      INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
      VALUES (@id, 'task:claimed', @now, @agentId, @attempt, json_object('leaseExpiresAt', CAST(@expires AS INTEGER)))`);
    this.dependencyResults = db.prepare(`
      SELECT d.task_id AS for_id, t.id, t.title, t.persona_id AS persona, s.status, s.result
      FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on JOIN task_status s ON s.task_id = d.depends_on
      WHERE d.task_id IN (SELECT value FROM json_each(?))
      ORDER BY d.task_id, d.depends_on`);
    // One row per claimed task, positional VALUES (event-rows.ts).
    this.insertClaimEvents = new EventRows(db);
    // Each the first row of a table (or none): a seek per claim, not per claimed task.
    this.anyDependency = db.prepare("SELECT EXISTS (SELECT 1 FROM task_dependencies)").pluck();
    this.anyHumanRequest = db.prepare("SELECT EXISTS (SELECT 1 FROM human_requests)").pluck();
  }

  claim(params: ClaimParams & { persona: string }): ClaimedTask[] {
    const limit = Math.min(Math.max(1, Math.trunc(params.limit ?? 1)), CLAIM_LIMIT_MAX);
    // The persona's lease comes with its gate row (one read of the persona for both).
    const gate = this.gates.gate(params.persona, params.now, limit);
    const leaseMs = params.leaseMs ?? gate.leaseMs ?? LEASE_MS_DEFAULT;
    const rows = this.gatedClaim(gate, { agentId: params.agentId, token: newLeaseToken(), leaseMs, now: params.now, persona: params.persona });
    // Took less than asked because the persona's concurrency is used up by other claimants of this
    // process (an MCP agent of roster start): its next settle here says so (TransactionRunner.waitForRoom).
    // Other processes hear of that settle through the database folder's watch.
    if (rows.length < limit && rows.length === gate.limit && gate.reasons.length === 0) this.tx.waitForRoom(params.persona);
    return this.claimed(rows, params.agentId, leaseMs, params.now);
  }

  /** Claims the named task if it is ready now (pending, run_at passed); null otherwise. */
  claimOne(params: { taskId: number; agentId: string; leaseMs?: number | undefined; now: number }): ClaimedTask | null {
    const persona = this.personaOf.get(params.taskId) as string | undefined;
    if (persona === undefined) return null;
    // Behind the same economic gates as a persona's claim (docs/ARCHITECTURE.md rule 15).
    const gate = this.gates.gate(persona, params.now, 1);
    const leaseMs = params.leaseMs ?? gate.leaseMs ?? LEASE_MS_DEFAULT;
    if (gate.limit <= 0) {
      if (gate.reasons.length > 0) this.tx.emit("claim:gated", { persona, codes: gate.reasons.map((r) => r.code), until: gate.until });
      return null;
    }
    const rows = this.claimOneStmt.all({ agentId: params.agentId, token: newLeaseToken(), leaseMs, now: params.now, taskId: params.taskId });
    this.counts.move(persona, "pending", "claimed", rows.length);
    this.gates.claimed(persona, gate, rows.map((r) => r.task_id), params.now);
    return this.claimed(rows, params.agentId, leaseMs, params.now)[0] ?? null;
  }

  /** What both claims share: the claimed tasks' details and dependency results, their events and notification. */
  private claimed(rows: ClaimedRow[], agentId: string, leaseMs: number, now: number): ClaimedTask[] {
    const params = { agentId, now };
    if (rows.length === 0) return [];
    const ids = JSON.stringify(rows.map((row) => row.task_id));
    const detailRows = rows.length === 1 ? this.claimedDetailOne.all(rows[0]!.task_id) : this.claimedDetails.all(ids);
    const details = new Map(detailRows.map((row) => [row.id, row]));
    // The dependencies' results, for the claimed tasks that have some (none when no task has any).
    const deps = new Map<number, DependencyResult[]>();
    if (this.anyDependency.get() === 1) {
      for (const row of this.dependencyResults.all(ids) as Array<DependencyRow & { for_id: number }>) {
        let list = deps.get(row.for_id);
        if (list === undefined) deps.set(row.for_id, (list = []));
        list.push(dependencyResult(row));
      }
    }
    const claimed = rows.sort(byClaimOrder).map((row) => {
      const detail = details.get(row.task_id)!;
      detail.last_error = row.last_error;
      return claimedTask(row, detail, deps.get(row.task_id) ?? [], leaseMs, params.now);
    });
    // The questions earlier attempts asked, with the answers, on the tasks that have some.
    if (this.anyHumanRequest.get() === 1) this.withInputs(claimed);
    if (claimed.length === 1) {
      const t = claimed[0]!;
      this.insertClaimEvent.run({ id: t.id, now: params.now, agentId: params.agentId, attempt: t.attempt, expires: t.leaseExpiresAt });
    } else {
      this.insertClaimEvents.insert(
        claimed.map((t) => [t.id, "task:claimed", params.now, params.agentId, t.attempt, `{"leaseExpiresAt":${t.leaseExpiresAt}}`] as const),
      );
    }
    this.tx.emit("task:claimed", {
      agentId: params.agentId,
      tasks: claimed.map((t) => ({ id: t.id, persona: t.persona, attempt: t.attempt, readyAt: t.readyAt, claimedAt: t.claimedAt })),
    });
    return claimed;
  }

  /**
   * The claim statement behind the economic gates (docs/ARCHITECTURE.md rule 15): nothing when a
   * gate is closed (claim:gated says which and until when), fewer under a rate
   * limit or a half-open breaker (its probe), the held-skipping statement while
   * budgets hold tasks. Then counts the starts and marks the probe.
   */
  private gatedClaim(gate: SqliteClaimGate, p: { agentId: string; token: string; leaseMs: number; now: number; persona: string }): ClaimedRow[] {
    if (gate.limit <= 0) {
      // No reason: the persona is at its concurrency (its slots are busy), which is not a gate to report.
      if (gate.reasons.length > 0) this.tx.emit("claim:gated", { persona: p.persona, codes: gate.reasons.map((r) => r.code), until: gate.until });
      return [];
    }
    const stmt = gate.limit === 1 ? (gate.skipHeld ? this.claimFirstSkippingHeldStmt : this.claimFirstStmt) : gate.skipHeld ? this.claimSkippingHeldStmt : this.claimStmt;
    const rows = stmt.all({ ...p, limit: gate.limit });
    this.counts.move(p.persona, "pending", "claimed", rows.length);
    this.gates.claimed(p.persona, gate, rows.map((r) => r.task_id), p.now);
    return rows;
  }

}
