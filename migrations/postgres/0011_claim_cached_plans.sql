-- roster_claim (0010) without planning at every call. 0010 ran the claim statement by
-- EXECUTE so that it was planned with its LIMIT known: a generic plan of the one statement,
-- its LIMIT taken for a tenth of the queue, joined the picked rows to task_status by a
-- sequential scan at a million queued (bench/RESULTS.md). Planning it took 1-1.7 ms of a
-- claim's 8-16 ms on the server (pg_stat_statements, the `postgres` bench). Here the claim is
-- three statements whose plans hold whatever the planner guesses, so plpgsql keeps them:
-- the pick, one seek into the partial index task_status_claim in claim order, locking FOR
-- UPDATE SKIP LOCKED, its ids into an array (an index scan under a LIMIT, also in the generic
-- plan: test/store/postgres-plan.test.ts); the lease, an UPDATE of `task_id = ANY(ids)`
-- through the primary key (an array of unknown length is taken for 10 rows), writing the
-- task:claimed rows and returning what the attempt needs. The gates' guard is its own
-- statement, read before the pick (it read the same committed rows inside the claim; no
-- lock was involved). Same rules, same writes, same order as 0010: docs/ARCHITECTURE.md
-- rules 3, 9 and 15 (the room counted after the persona's lock, roster_persona_room).
CREATE OR REPLACE FUNCTION roster_claim(p_now bigint, p_agent text, p_token text, p_lease_ms bigint, p_persona text, p_limit integer)
RETURNS TABLE (task_id bigint, attempts integer, max_attempts integer, lease_token text, lease_expires_at bigint, ready_at bigint,
               run_at bigint, priority integer, last_error text, title text, description text, persona_id text, payload text,
               parent_id bigint, timeout_ms bigint, deps json, inputs json)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  room integer;
  ids bigint[];
  got bigint;
BEGIN
  room := roster_persona_room(p_persona);
  IF room <= 0 THEN
    RETURN;
  END IF;
  -- The gates' existence probes (src/store/postgres/gates.ts, UNGATED): any gate of the
  -- persona set, and the transactional claim decides.
  IF EXISTS (SELECT 1 FROM personas gp
             LEFT JOIN provider_pauses gpp ON gpp.provider = coalesce(gp.config::jsonb ->> 'provider', 'persona:' || gp.id)
             LEFT JOIN breakers gb ON gb.persona_id = gp.id
             WHERE gp.id = p_persona AND ((gpp.provider IS NOT NULL AND (gpp.until IS NULL OR gpp.until > p_now))
                                          OR gb.persona_id IS NOT NULL OR gp.config::jsonb ? 'rateLimit'))
     OR EXISTS (SELECT 1 FROM budget_holds)
     OR EXISTS (SELECT 1 FROM budgets WHERE scope IN ('persona','global'))
     OR EXISTS (SELECT 1 FROM task_status WHERE concurrency_key IS NOT NULL AND status IN ('claimed','in_progress')) THEN
    RETURN;
  END IF;
  SELECT array_agg(p.task_id) INTO ids FROM (
    SELECT task_id FROM task_status
    WHERE status = 'pending' AND persona_id = p_persona AND run_at <= p_now
    ORDER BY priority DESC, run_at, task_id
    LIMIT least(p_limit, room)
    FOR UPDATE SKIP LOCKED) AS p;
  IF ids IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY
    WITH claimed AS (
      UPDATE task_status s SET status = 'claimed', attempts = s.attempts + 1, assigned_agent_id = p_agent,
        lease_token = p_token || '.' || s.task_id, lease_ms = p_lease_ms, lease_expires_at = p_now + p_lease_ms,
        claimed_at = p_now, started_at = NULL, progress = NULL, progress_message = NULL, updated_at = p_now
      WHERE s.task_id = ANY(ids)
      RETURNING s.task_id, s.attempts, s.max_attempts, s.lease_token, s.lease_expires_at, s.ready_at, s.run_at, s.priority, s.last_error),
    logged AS (
      INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
      SELECT task_id, 'task:claimed', p_now, p_agent, attempts, json_build_object('leaseExpiresAt', lease_expires_at)::text FROM claimed)
    SELECT c.task_id, c.attempts, c.max_attempts, c.lease_token, c.lease_expires_at, c.ready_at, c.run_at, c.priority, c.last_error,
      t.title, t.description, t.persona_id, t.payload, t.parent_id, t.timeout_ms,
      (SELECT json_agg(json_build_object('id', dt.id, 'title', dt.title, 'persona', dt.persona_id, 'status', ds.status, 'result', ds.result) ORDER BY d.depends_on)
       FROM task_dependencies d JOIN tasks dt ON dt.id = d.depends_on JOIN task_status ds ON ds.task_id = d.depends_on
       WHERE d.task_id = c.task_id),
      (SELECT json_agg(json_build_object('question', h.question, 'answer', h.answer, 'attempt', h.attempt,
                'askedAt', h.asked_at, 'answeredAt', h.answered_at, 'answeredBy', h.answered_by) ORDER BY h.id)
       FROM human_requests h WHERE h.task_id = c.task_id AND h.kind = 'input' AND h.outcome = 'answered')
    FROM claimed c JOIN tasks t ON t.id = c.task_id;
  GET DIAGNOSTICS got = ROW_COUNT;
  -- Fewer than asked and some taken (none: the transactional claim follows and records it): recorded as waited for when the room is used up and ready tasks are
  -- left (as ROOM_WAIT_SQL), counted again on a snapshot after the claim.
  IF got > 0 AND got < p_limit THEN
    INSERT INTO persona_room_waits (persona_id)
    SELECT p_persona WHERE roster_persona_room(p_persona) = 0
      AND EXISTS (SELECT 1 FROM task_status WHERE status = 'pending' AND persona_id = p_persona AND run_at <= p_now)
    ON CONFLICT DO NOTHING;
  END IF;
END $$;
