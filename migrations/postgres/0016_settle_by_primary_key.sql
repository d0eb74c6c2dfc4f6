-- The batch completion finds its rows by primary key whatever the statistics say (issue 19).
-- 0014's UPDATE joined the batch (unnest of the ids, tokens and results) to task_status with
-- `status IN ('claimed','in_progress')` in its WHERE: a predicate that lets the planner read
-- the rows through the partial index of leased rows (task_status_agent). Once ANALYZE has run
-- while few rows were leased (autovacuum does, on any table that changes), that index looks
-- like one row, and the generic plan became a nested loop over every leased row with the whole
-- batch scanned again for each: 256 × 256 rows compared, 12 of a completion's 15 ms, 55 µs a
-- task instead of 20 (test/store/postgres-settle-plan.test.ts). Here the lease's state is
-- read under the lock the first statement already takes in id order (by primary key), and the
-- UPDATE leaves out the rows found not leased (`<> ALL(stale)`, usually none) instead of
-- testing the state itself, so the only index it can use is the primary key, one seek per
-- task of the batch. Fencing is unchanged: the rows are locked before the state is read, the
-- token is compared in the UPDATE (docs/ARCHITECTURE.md rules 3 and 9). The same writes, in
-- the same order, as 0014.
CREATE OR REPLACE FUNCTION roster_complete_batch(p_ids bigint[], p_tokens text[], p_results text[], p_now bigint, p_channel text)
RETURNS TABLE (fallback boolean, task_id bigint, persona_id text, attempts integer)
LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
  locked_personas text[];
  stale bigint[];
  done_ids bigint[];
  done_personas text[];
  done_attempts integer[];
BEGIN
  SELECT array_agg(DISTINCT l.persona_id), coalesce(array_agg(l.task_id) FILTER (WHERE l.status NOT IN ('claimed','in_progress')), '{}')
    INTO locked_personas, stale
    FROM (SELECT persona_id, task_id, status FROM task_status WHERE task_id = ANY(p_ids) ORDER BY task_id FOR UPDATE) AS l;
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
      WHERE s.task_id = b.id AND s.lease_token = b.token AND s.task_id <> ALL(stale)
      RETURNING s.task_id, s.persona_id, s.attempts, s.assigned_agent_id),
    logged AS (
      INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
      SELECT task_id, 'task:completed', p_now, assigned_agent_id, attempts, '{"readied" : 0}' FROM done ORDER BY task_id)
  SELECT array_agg(task_id), array_agg(persona_id), array_agg(attempts) INTO done_ids, done_personas, done_attempts FROM done;
  IF done_ids IS NULL THEN
    RETURN;
  END IF;
  IF p_channel IS NOT NULL THEN
    PERFORM roster_room_freed(ARRAY(SELECT DISTINCT p FROM unnest(done_personas) AS u(p) ORDER BY p), p_channel);
  END IF;
  RETURN QUERY SELECT false, u.id, u.persona, u.attempt FROM unnest(done_ids, done_personas, done_attempts) AS u(id, persona, attempt);
END $$;
