/**
 * The statements of the PostgreSQL store's batched lease transitions (PgTransitions'
 * startMany and completeMany, and the one-round-trip completion): each batch's rows are
 * locked in task id order first, so two transactions never wait on each other in a cycle.
 */
import { prepared } from "./database.js";

/** lockInIdOrder's statement: FOR UPDATE after ORDER BY locks the rows in that order. */
export const LOCK_IN_ID_ORDER_SQL = prepared("SELECT task_id FROM task_status WHERE task_id = ANY($1::bigint[]) ORDER BY task_id FOR UPDATE");

/**
 * lockLeased's statement: locks as LOCK_IN_ID_ORDER_SQL, and answers the ids of the locked rows
 * not leased now (NULL when none). The state is tested in the aggregate's FILTER, above the
 * lock: a WHERE outside the locking subquery would be pushed down into its scan, below the
 * LockRows node, and leave the leased rows unlocked.
 */
export const LOCK_LEASED_SQL = prepared(`SELECT array_agg(l.task_id) FILTER (WHERE l.status NOT IN ('claimed','in_progress')) AS stale
  FROM (SELECT task_id, status FROM task_status WHERE task_id = ANY($1::bigint[]) ORDER BY task_id FOR UPDATE) AS l`);

/**
 * completeMany's batch as one statement sent alone: one round trip and one transaction
 * (roster_complete_batch, migrations/postgres/0010 and 0016), for completions without usage. Its
 * first row says `fallback` when a task has dependents or a persona a breaker: nothing was
 * written, and the batch goes the transactional way. Params: ids, lease tokens, result JSON,
 * now, the NOTIFY channel (PgTransactions.channel).
 */
export const PG_COMPLETE_BATCH_SQL = prepared("SELECT * FROM roster_complete_batch($1::bigint[], $2::text[], $3::text[], $4::bigint, $5)");

/**
 * startMany's UPDATE, after lockLeased: the token is the fence, the state was read under the
 * lock. Params: ids, lease tokens, start times.
 */
export const PG_START_MANY_SQL = prepared(`UPDATE task_status s SET status = 'in_progress', started_at = coalesce(s.started_at, b.at), updated_at = b.at
   FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS b(id, token, at)
   WHERE s.task_id = b.id AND s.lease_token = b.token
   RETURNING s.task_id, b.token, s.attempts, s.assigned_agent_id, b.at`);

/** completeMany's statement, after lockLeased as PG_START_MANY_SQL. Params: ids, lease tokens, result JSON, now. */
export const PG_COMPLETE_MANY_SQL = prepared(`WITH done AS (
     UPDATE task_status s SET status = 'completed', result = b.result, progress = 1, finished_at = $4::bigint,
       lease_token = NULL, lease_expires_at = NULL, updated_at = $4::bigint
     FROM unnest($1::bigint[], $2::text[], $3::text[]) AS b(id, token, result)
     WHERE s.task_id = b.id AND s.lease_token = b.token
     RETURNING s.task_id, s.persona_id, s.attempts, s.assigned_agent_id, s.claimed_at,
       EXISTS (SELECT 1 FROM task_dependencies d WHERE d.depends_on = s.task_id) AS has_dependents),
   logged AS (
     INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
     SELECT task_id, 'task:completed', $4::bigint, assigned_agent_id, attempts, json_build_object('readied', 0)::text
     FROM done WHERE NOT has_dependents ORDER BY task_id)
   SELECT task_id, persona_id, attempts, assigned_agent_id, claimed_at, has_dependents FROM done`);

/** A row of PG_COMPLETE_BATCH_SQL. */
export type CompleteBatchRow = { fallback: boolean; task_id: number; persona_id: string; attempts: number };
