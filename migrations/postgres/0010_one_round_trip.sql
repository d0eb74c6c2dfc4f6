-- The supervisor's hot path in one round trip each (issue 19's throughput target): the
-- plain claim and the plain settle batch as functions, each called as a statement of its
-- own outside BEGIN … COMMIT, so one statement is the whole transaction (atomic as any
-- transaction). Under BEGIN … COMMIT a claim was four round trips (BEGIN, the room, the
-- claim, COMMIT) and a settle five (BEGIN, the lock in id order, the completions, the room's
-- wake-up, COMMIT); on a loaded host each round trip waits for a core twice. Inside a
-- VOLATILE plpgsql function each statement takes a fresh snapshot under READ COMMITTED, as
-- the separate statements did, so the rules hold as before (docs/ARCHITECTURE.md rules 2, 3,
-- 9, 13, 15): the room is counted after the persona's lock (roster_persona_room), the
-- completions' dependents are looked for after their rows are locked, and the task:claimed
-- and task:completed rows are written in the same transaction as their transitions.
-- The claim statement is planned with its values at every call (EXECUTE … USING), as the
-- client's prepared statement was: a generic plan cannot tell the claim's LIMIT and, at a
-- million queued, chose a sequential scan (bench/RESULTS.md, test/store/postgres-plan.test.ts).
-- The other statements keep plpgsql's cached plans (planning each, every call, cost more than
-- running them).
-- What needs more than this (a gate of the persona set, dependents to count down, a
-- breaker, usage to record) goes the transactional way in src/store/postgres/*.ts, which
-- stays the reference: these functions do the same writes, in the same order.

-- The claim of a persona's best ready tasks when no economic gate of the persona is active
-- (src/store/postgres/claims.ts, PG_CLAIM_SQL with the gates' guard, ungatedClaimSql):
-- the persona's lock and room first, then the claim of at most min(limit, room) tasks with
-- their task:claimed rows and what the attempt needs, then, when it took fewer than it asked,
-- the persona recorded as waited for if its room is used up (migrations/postgres/0009). No
-- rows: nothing was written; the caller then takes the transactional claim (a gate may be
-- closed, which only the gate read can tell).
CREATE FUNCTION roster_claim(p_now bigint, p_agent text, p_token text, p_lease_ms bigint, p_persona text, p_limit integer)
RETURNS TABLE (task_id bigint, attempts integer, max_attempts integer, lease_token text, lease_expires_at bigint, ready_at bigint,
               run_at bigint, priority integer, last_error text, title text, description text, persona_id text, payload text,
               parent_id bigint, timeout_ms bigint, deps json, inputs json)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  room integer;
  got bigint;
BEGIN
  room := roster_persona_room(p_persona);
  IF room <= 0 THEN
    RETURN;
  END IF;
  RETURN QUERY EXECUTE $claim$
    WITH picked AS (
      SELECT task_id FROM task_status
      WHERE status = 'pending' AND persona_id = $5 AND run_at <= $1
        AND NOT EXISTS (SELECT 1 FROM personas gp
                        LEFT JOIN provider_pauses gpp ON gpp.provider = coalesce(gp.config::jsonb ->> 'provider', 'persona:' || gp.id)
                        LEFT JOIN breakers gb ON gb.persona_id = gp.id
                        WHERE gp.id = $5 AND ((gpp.provider IS NOT NULL AND (gpp.until IS NULL OR gpp.until > $1))
                                                     OR gb.persona_id IS NOT NULL OR gp.config::jsonb ? 'rateLimit'))
        AND NOT EXISTS (SELECT 1 FROM budget_holds)
        AND NOT EXISTS (SELECT 1 FROM budgets WHERE scope IN ('persona','global'))
        AND NOT EXISTS (SELECT 1 FROM task_status WHERE concurrency_key IS NOT NULL AND status IN ('claimed','in_progress'))
      ORDER BY priority DESC, run_at, task_id
      LIMIT $6
      FOR UPDATE SKIP LOCKED),
    claimed AS (
      UPDATE task_status s SET status = 'claimed', attempts = s.attempts + 1, assigned_agent_id = $2,
        lease_token = $3 || '.' || s.task_id, lease_ms = $4, lease_expires_at = $1 + $4,
        claimed_at = $1, started_at = NULL, progress = NULL, progress_message = NULL, updated_at = $1
      FROM picked WHERE s.task_id = picked.task_id
      RETURNING s.task_id, s.attempts, s.max_attempts, s.lease_token, s.lease_expires_at, s.ready_at, s.run_at, s.priority, s.last_error),
    logged AS (
      INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
      SELECT task_id, 'task:claimed', $1, $2, attempts, json_build_object('leaseExpiresAt', lease_expires_at)::text FROM claimed)
    SELECT c.task_id, c.attempts, c.max_attempts, c.lease_token, c.lease_expires_at, c.ready_at, c.run_at, c.priority, c.last_error,
      t.title, t.description, t.persona_id, t.payload, t.parent_id, t.timeout_ms,
      (SELECT json_agg(json_build_object('id', dt.id, 'title', dt.title, 'persona', dt.persona_id, 'status', ds.status, 'result', ds.result) ORDER BY d.depends_on)
       FROM task_dependencies d JOIN tasks dt ON dt.id = d.depends_on JOIN task_status ds ON ds.task_id = d.depends_on
       WHERE d.task_id = c.task_id),
      (SELECT json_agg(json_build_object('question', h.question, 'answer', h.answer, 'attempt', h.attempt,
                'askedAt', h.asked_at, 'answeredAt', h.answered_at, 'answeredBy', h.answered_by) ORDER BY h.id)
       FROM human_requests h WHERE h.task_id = c.task_id AND h.kind = 'input' AND h.outcome = 'answered')
    FROM claimed c JOIN tasks t ON t.id = c.task_id
  $claim$ USING p_now, p_agent, p_token, p_lease_ms, p_persona, least(p_limit, room);
  GET DIAGNOSTICS got = ROW_COUNT;
  -- Fewer than asked and some taken: recorded as waited for when the room is used up and
  -- ready tasks are left (as ROOM_WAIT_SQL), counted again on a snapshot after the claim.
  IF got > 0 AND got < p_limit THEN
    INSERT INTO persona_room_waits (persona_id)
    SELECT p_persona WHERE roster_persona_room(p_persona) = 0
      AND EXISTS (SELECT 1 FROM task_status WHERE status = 'pending' AND persona_id = p_persona AND run_at <= p_now)
    ON CONFLICT DO NOTHING;
  END IF;
END $$;

-- A batch of completions without children, usage or dependents (src/store/postgres/
-- transitions.ts, completeMany, in PgTransactions.write): the rows locked in task id order,
-- then, on a snapshot taken after the lock, `fallback` (one row, nothing written) when any
-- of them has a dependent or its persona a breaker (a setting or a row): the caller then
-- settles the batch the transactional way. Otherwise each lease still current (fencing by
-- token) is completed with its task:completed row ({"readied":0}), and the personas whose
-- leases ended wake a claimant that found their room used up (roster_room_freed, 0009).
-- Returns the completed rows; a task of the batch not among them lost its lease.
CREATE FUNCTION roster_complete_batch(p_ids bigint[], p_tokens text[], p_results text[], p_now bigint, p_channel text)
RETURNS TABLE (fallback boolean, task_id bigint, persona_id text, attempts integer)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  locked_personas text[];
  done_ids bigint[];
  done_personas text[];
  done_attempts integer[];
BEGIN
  SELECT array_agg(DISTINCT l.persona_id) INTO locked_personas
    FROM (SELECT persona_id FROM task_status WHERE task_id = ANY(p_ids) ORDER BY task_id FOR UPDATE) AS l;
  IF EXISTS (SELECT 1 FROM task_dependencies d WHERE d.depends_on = ANY(p_ids))
     OR EXISTS (SELECT 1 FROM personas p WHERE p.id = ANY(locked_personas)
                  AND (p.config::jsonb -> 'breaker' IS NOT NULL OR EXISTS (SELECT 1 FROM breakers b WHERE b.persona_id = p.id))) THEN
    RETURN QUERY SELECT true, NULL::bigint, NULL::text, NULL::integer;
    RETURN;
  END IF;
  WITH done AS (
      UPDATE task_status s SET status = 'completed', result = b.result, progress = 1, finished_at = p_now,
        lease_token = NULL, lease_expires_at = NULL, updated_at = p_now
      FROM unnest(p_ids, p_tokens, p_results) AS b(id, token, result)
      WHERE s.task_id = b.id AND s.lease_token = b.token AND s.status IN ('claimed','in_progress')
      RETURNING s.task_id, s.persona_id, s.attempts, s.assigned_agent_id),
    logged AS (
      INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
      SELECT task_id, 'task:completed', p_now, assigned_agent_id, attempts, json_build_object('readied', 0)::text FROM done ORDER BY task_id)
  SELECT array_agg(task_id), array_agg(persona_id), array_agg(attempts) INTO done_ids, done_personas, done_attempts FROM done;
  IF done_ids IS NULL THEN
    RETURN;
  END IF;
  IF p_channel IS NOT NULL THEN
    PERFORM roster_room_freed(ARRAY(SELECT DISTINCT p FROM unnest(done_personas) AS u(p) ORDER BY p), p_channel);
  END IF;
  RETURN QUERY SELECT false, u.id, u.persona, u.attempt FROM unnest(done_ids, done_personas, done_attempts) AS u(id, persona, attempt);
END $$;
