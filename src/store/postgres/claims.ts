import type { ClaimParams, ClaimedTask, DependencyResult, HumanInput } from "../types.js";
import { prepared, type Tx } from "./database.js";
import { byClaimOrder, claimedTask, dependencyResult, type ClaimDetail, type ClaimRow, type DependencyRow } from "../claimed.js";
import { skippingClaimSql, ungatedClaimSql, type PgGates } from "./gates.js";

export const CLAIM_LIMIT_MAX = 1_000;

const CLAIM_SET = `status = 'claimed', attempts = s.attempts + 1, assigned_agent_id = $2,
        lease_token = $3 || '.' || s.task_id, lease_ms = $4::bigint, lease_expires_at = $1::bigint + $4::bigint,
        claimed_at = $1::bigint, started_at = NULL, progress = NULL, progress_message = NULL, updated_at = $1::bigint`;
const CLAIM_RETURNING = "RETURNING s.task_id, s.attempts, s.max_attempts, s.lease_token, s.lease_expires_at, s.ready_at, s.run_at, s.priority";

/**
 * docs/ARCHITECTURE.md rules 2, 3 and 9 on PostgreSQL, in one statement (one round
 * trip, which is what a claim costs on a loaded or distant server): `picked` takes the
 * best ready rows by one seek into the partial claim index task_status_claim
 * (persona, priority DESC, run_at, task_id) WHERE pending, locking them FOR UPDATE
 * SKIP LOCKED so concurrent claimers on any host take different rows instead of
 * queueing on the same ones; `claimed` leases them; `logged` writes their
 * task:claimed events; the outer SELECT returns what the attempt needs (the task, its
 * dependencies with their results, the answers a person gave its earlier attempts'
 * questions, as JSON). Its LIMIT ($6) is at most the persona's room under its concurrency,
 * counted across every claimant under the persona's lock by ROOM_SQL just before it, in the
 * same transaction. The room is a parameter, not a function in the LIMIT: the planner cannot
 * tell a function's value, takes a tenth of the queue for the LIMIT and, at a million queued,
 * leases the rows through a sequential scan of task_status (1.3 s a claim, bench/RESULTS.md).
 * test/store/postgres-plan.test.ts explains it, and test/store/postgres-deep-claim-plan.test.ts at a deep queue.
 * Params: $1 now, $2 agentId, $3 token prefix, $4 leaseMs, $5 persona, $6 limit.
 */
export const PG_CLAIM_SQL = prepared(`
      WITH picked AS (
        SELECT task_id FROM task_status
        WHERE status = 'pending' AND persona_id = $5 AND run_at <= $1::bigint
        ORDER BY priority DESC, run_at, task_id
        LIMIT $6
        FOR UPDATE SKIP LOCKED),
      claimed AS (
        UPDATE task_status s SET ${CLAIM_SET}
        FROM picked WHERE s.task_id = picked.task_id
        ${CLAIM_RETURNING}, s.last_error),
      logged AS (
        INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
        SELECT task_id, 'task:claimed', $1::bigint, $2, attempts, json_build_object('leaseExpiresAt', lease_expires_at)::text FROM claimed)
      SELECT c.task_id, c.attempts, c.max_attempts, c.lease_token, c.lease_expires_at, c.ready_at, c.run_at, c.priority, c.last_error,
        t.title, t.description, t.persona_id, t.payload, t.parent_id, t.timeout_ms,
        (SELECT json_agg(json_build_object('id', dt.id, 'title', dt.title, 'persona', dt.persona_id, 'status', ds.status, 'result', ds.result) ORDER BY d.depends_on)
         FROM task_dependencies d JOIN tasks dt ON dt.id = d.depends_on JOIN task_status ds ON ds.task_id = d.depends_on
         WHERE d.task_id = c.task_id) AS deps,
        (SELECT json_agg(json_build_object('question', h.question, 'answer', h.answer, 'attempt', h.attempt,
                  'askedAt', h.asked_at, 'answeredAt', h.answered_at, 'answeredBy', h.answered_by) ORDER BY h.id)
         FROM human_requests h WHERE h.task_id = c.task_id AND h.kind = 'input' AND h.outcome = 'answered') AS inputs
      FROM claimed c JOIN tasks t ON t.id = c.task_id`);

/**
 * The plain claim (PG_CLAIM_SQL behind the gates' guard, after the persona's room) and its
 * room wait, as one statement sent alone: one round trip and one transaction
 * (roster_claim, migrations/postgres/0010). Rows as PG_CLAIM_SQL's; none means nothing was
 * written and the transactional claim follows. Params as PG_CLAIM_SQL's.
 */
export const PG_CLAIM_ONE_TRIP_SQL = prepared("SELECT * FROM roster_claim($1::bigint, $2, $3, $4::bigint, $5, $6::int)");

/**
 * The persona's claim lock (roster_persona_room's, migrations/postgres/0008), taken first by a
 * claim that reads the gates before its claim statement: every claim takes the persona's lock
 * before any gate row's (a rate window's, a breaker's), so claimers never wait in a cycle.
 */
const PERSONA_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended('roster:persona:' || $1, 0))";

/**
 * The persona's room under its concurrency (migrations/postgres/0008): takes the persona's
 * claim lock, held to the end of the transaction, then counts its leased rows, so hosts
 * claiming one persona count one after another. Taken first, before any gate row's lock.
 */
const ROOM_SQL = prepared("SELECT roster_persona_room($1) AS room");

/** The claim of one named task, if it is ready now. Params as PG_CLAIM_SQL, $5 the task id. */
const CLAIM_ONE_SQL = `
      UPDATE task_status s SET ${CLAIM_SET}
      WHERE s.task_id = $5 AND s.status = 'pending' AND s.run_at <= $1::bigint AND roster_persona_room(s.persona_id) > 0
      ${CLAIM_RETURNING}`;

/**
 * After a claim that took less than it asked: when the persona's room is used up (by other
 * claimants: this one asked for no more than it could run) and ready tasks are left, the
 * persona is recorded as waited for, so the settle that frees its room NOTIFYs
 * (migrations/postgres/0009, docs/ARCHITECTURE.md rule 13). Runs under the persona's lock,
 * which the claim took. Params: $1 persona, $2 now.
 */
const ROOM_WAIT_SQL = `
      INSERT INTO persona_room_waits (persona_id)
      SELECT $1 WHERE roster_persona_room($1) = 0
        AND EXISTS (SELECT 1 FROM task_status WHERE status = 'pending' AND persona_id = $1 AND run_at <= $2::bigint)
      ON CONFLICT DO NOTHING`;

/** A row of PG_CLAIM_SQL: the lease, the task, its dependencies (JSON, results as stored text). */
export type ClaimedRow = ClaimRow & ClaimDetail & {
  deps: DependencyRow[] | null;
  inputs: HumanInput[] | null;
};

/** The tasks one claim may take: 1 to CLAIM_LIMIT_MAX. */
function claimLimit(limit: number | undefined): number {
  return Math.min(Math.max(1, Math.trunc(limit ?? 1)), CLAIM_LIMIT_MAX);
}

/**
 * The claim on PostgreSQL (docs/ARCHITECTURE.md, "One path per transition"; rules 2, 3, 9, 15): a
 * persona's best ready tasks in one statement, or one named task, behind the economic gates,
 * inside the caller's transaction. Split from transitions.ts, by concern.
 */
export class PgClaims {
  /** The claim statements that skip held tasks and full concurrency keys, by [holds, keys]. */
  private readonly skipping = new Map<string, string>();

  constructor(private readonly gates: PgGates) {}

  /**
   * The claim behind the economic gates (rule 15). With the lease known (the supervisor
   * passes it), first the plain statement guarded by the gates' cheap existence probes
   * (evaluated once, before the seek): while no gate is active for the persona a claim is
   * that one statement. Otherwise, or when it took nothing, the persona's gate read (which
   * also gives its lease) says nothing, fewer (a rate window, a breaker's probe) or all,
   * and the plain statement runs unless holds or running concurrency keys need the
   * skipping one (src/store/postgres/gates.ts).
   */
  /**
   * The plain claim in one round trip (PG_CLAIM_ONE_TRIP_SQL), when it may be tried: the lease
   * known (the supervisor passes it) and no gate of the persona seen set. The statement and its
   * values, or null; its rows go to fromOneTrip, and none means claim() (with triedOneTrip).
   * `token`: the lease token prefix of the claim call (newLeaseToken), the same in each statement
   * the call sends, so a claim whose answer was lost is known by it (lost-claims.ts).
   */
  oneTrip(params: ClaimParams & { persona: string }, token: string): { sql: string; values: unknown[] } | null {
    if (params.leaseMs === undefined || this.gates.likelyGated(params.persona)) return null;
    return { sql: PG_CLAIM_ONE_TRIP_SQL, values: [params.now, params.agentId, token, params.leaseMs, params.persona, claimLimit(params.limit)] };
  }

  /** The tasks a one-round-trip claim leased, as claim() returns them. */
  fromOneTrip(rows: ClaimedRow[], params: ClaimParams & { leaseMs?: number | undefined }, emit: Tx["emit"]): ClaimedTask[] {
    return this.leased(emit, rows, params, params.leaseMs!);
  }

  async claim(tx: Tx, params: ClaimParams & { persona: string }, token: string, triedOneTrip = false): Promise<ClaimedTask[]> {
    const limit = claimLimit(params.limit);
    // The persona's lock and room first, before the gate's row locks (a rate window, a breaker),
    // so two claimers never wait on each other in a cycle.
    const room = Number((await tx.one<{ room: number }>(ROOM_SQL, [params.persona]))?.room ?? 0);
    // The one-round-trip claim (oneTrip) is this same statement: when it took nothing, so would this.
    if (!triedOneTrip && params.leaseMs !== undefined && !this.gates.likelyGated(params.persona)) {
      const rows = room <= 0 ? [] : await tx.rows<ClaimedRow>(this.ungatedSql(), [params.now, params.agentId, token, params.leaseMs, params.persona, Math.min(limit, room)]);
      if (rows.length > 0) {
        if (rows.length < limit) await tx.run(ROOM_WAIT_SQL, [params.persona, params.now]);
        return this.leased(tx.emit, rows, params, params.leaseMs);
      }
    }
    const gate = await this.gates.gate(tx, params.persona, params.now, limit);
    if (gate.limit <= 0) {
      tx.emit("claim:gated", { persona: params.persona, codes: gate.reasons.map((r) => r.code), until: gate.until });
      return [];
    }
    const leaseMs = params.leaseMs ?? gate.leaseMs;
    const rows = await tx.rows<ClaimedRow>(gate.skipHeld ? this.skippingSql(gate.holds, gate.keysBusy) : PG_CLAIM_SQL, [
      params.now,
      params.agentId,
      token,
      leaseMs,
      params.persona,
      Math.max(0, Math.min(gate.limit, room)),
    ]);
    await this.gates.claimed(tx, params.persona, gate, rows.map((r) => r.task_id), params.now);
    if (rows.length < gate.limit) await tx.run(ROOM_WAIT_SQL, [params.persona, params.now]);
    return this.leased(tx.emit, rows, params, leaseMs);
  }

  /** The claimed rows as the attempts' tasks, best first, with their notification. */
  private leased(emit: Tx["emit"], rows: ClaimedRow[], params: ClaimParams, leaseMs: number): ClaimedTask[] {
    if (rows.length === 0) return [];
    const claimed = rows.sort(byClaimOrder).map((row): ClaimedTask => ({
      ...claimedTask(row, row, (row.deps ?? []).map(dependencyResult), leaseMs, params.now),
      ...(row.inputs === null ? {} : { inputs: row.inputs }),
    }));
    emit("task:claimed", { agentId: params.agentId, tasks: claimed.map((t) => ({ id: t.id, persona: t.persona, attempt: t.attempt, readyAt: t.readyAt, claimedAt: t.claimedAt })) });
    return claimed;
  }

  private ungatedSql(): string {
    let sql = this.skipping.get("ungated");
    if (sql === undefined) this.skipping.set("ungated", (sql = ungatedClaimSql(PG_CLAIM_SQL)));
    return sql;
  }

  private skippingSql(holds: boolean, keys: boolean): string {
    const id = `${holds}:${keys}`;
    let sql = this.skipping.get(id);
    if (sql === undefined) this.skipping.set(id, (sql = prepared(skippingClaimSql(PG_CLAIM_SQL, holds, keys))));
    return sql;
  }

  async claimOne(tx: Tx, params: { taskId: number; agentId: string; leaseMs?: number | undefined; now: number }, token: string): Promise<ClaimedTask | null> {
    const row = await tx.one<{ persona_id: string }>("SELECT persona_id FROM task_status WHERE task_id = $1", [params.taskId]);
    if (row === undefined) return null;
    // Behind the same economic gates as a persona's claim (rule 15).
    await tx.run(PERSONA_LOCK_SQL, [row.persona_id]);
    const gate = await this.gates.gate(tx, row.persona_id, params.now, 1);
    if (gate.limit <= 0) {
      tx.emit("claim:gated", { persona: row.persona_id, codes: gate.reasons.map((r) => r.code), until: gate.until });
      return null;
    }
    const leaseMs = params.leaseMs ?? gate.leaseMs;
    const rows = await tx.rows<ClaimRow>(CLAIM_ONE_SQL, [params.now, params.agentId, token, leaseMs, params.taskId]);
    if (rows.length === 0) await tx.run(ROOM_WAIT_SQL, [row.persona_id, params.now]);
    await this.gates.claimed(tx, row.persona_id, gate, rows.map((r) => r.task_id), params.now);
    return (await this.claimed(tx, rows, params.agentId, leaseMs, params.now))[0] ?? null;
  }

  private async claimed(tx: Tx, rows: ClaimRow[], agentId: string, leaseMs: number, now: number): Promise<ClaimedTask[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((r) => r.task_id);
    const details = new Map(
      (
        await tx.rows<ClaimDetail & { id: number }>(
          `SELECT t.id, t.title, t.description, t.persona_id, t.payload, t.parent_id, t.timeout_ms, s.last_error
           FROM tasks t JOIN task_status s ON s.task_id = t.id WHERE t.id = ANY($1::bigint[])`,
          [ids],
        )
      ).map((r) => [r.id, r]),
    );
    const deps = new Map<number, DependencyResult[]>();
    for (const row of await tx.rows<DependencyRow & { for_id: number }>(
      `SELECT d.task_id AS for_id, t.id, t.title, t.persona_id AS persona, s.status, s.result
       FROM task_dependencies d JOIN tasks t ON t.id = d.depends_on JOIN task_status s ON s.task_id = d.depends_on
       WHERE d.task_id = ANY($1::bigint[]) ORDER BY d.task_id, d.depends_on`,
      [ids],
    )) {
      let list = deps.get(row.for_id);
      if (list === undefined) deps.set(row.for_id, (list = []));
      list.push(dependencyResult(row));
    }
    const claimed = rows.sort(byClaimOrder).map((row) => claimedTask(row, details.get(row.task_id)!, deps.get(row.task_id) ?? [], leaseMs, now));
    await tx.run(
      `INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
       SELECT u.id, 'task:claimed', $4, $5, u.attempt, json_build_object('leaseExpiresAt', u.expires)::text
       FROM unnest($1::bigint[], $2::int[], $3::bigint[]) AS u(id, attempt, expires)`,
      [claimed.map((t) => t.id), claimed.map((t) => t.attempt), claimed.map((t) => t.leaseExpiresAt), now, agentId],
    );
    tx.emit("task:claimed", { agentId, tasks: claimed.map((t) => ({ id: t.id, persona: t.persona, attempt: t.attempt, readyAt: t.readyAt, claimedAt: t.claimedAt })) });
    return claimed;
  }
}
