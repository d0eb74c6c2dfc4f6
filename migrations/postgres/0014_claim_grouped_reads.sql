-- Less work per claimed row in roster_claim (issue 19's throughput target: the PostgreSQL
-- server's CPU per task is what bounds the supervisor on one machine). 0011's lease statement
-- ran two correlated subqueries for every claimed row, a task's dependencies with their
-- results and the answers a person gave its earlier questions: a subplan started, run and
-- aggregated per row (two index probes each), for rows that nearly always have neither. Here
-- each is one statement over the picked ids (`= ANY(ids)`) before the lease, its rows kept in
-- two arrays by task id, and the lease statement takes a task's JSON from them by position:
-- a task without dependencies or answers costs its share of one scan. The same JSON for each
-- task (json_agg in the same order; NULL when none), the same writes in the same order:
-- docs/ARCHITECTURE.md rules 3, 9 and 15. The task:claimed and task:completed rows' data is
-- written as the text json_build_object made ('{"leaseExpiresAt" : N}', '{"readied" : 0}'),
-- without building a json value per row.
CREATE OR REPLACE FUNCTION roster_claim(p_now bigint, p_agent text, p_token text, p_lease_ms bigint, p_persona text, p_limit integer)
RETURNS TABLE (task_id bigint, attempts integer, max_attempts integer, lease_token text, lease_expires_at bigint, ready_at bigint,
               run_at bigint, priority integer, last_error text, title text, description text, persona_id text, payload text,
               parent_id bigint, timeout_ms bigint, deps json, inputs json)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  room integer;
  ids bigint[];
  dep_ids bigint[];
  dep_json json[];
  input_ids bigint[];
  input_json json[];
  got bigint;
BEGIN
  room := roster_persona_room(p_persona);
  IF room <= 0 THEN
    RETURN;
  END IF;
  -- The gates' guard and the pick as 0011.
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
  -- The picked tasks' dependencies with their results, and the answers a person gave their
  -- earlier attempts' questions: one scan each over the ids, by task_dependencies' and
  -- human_requests_task's leading task_id (rows of the picked tasks, locked: their
  -- dependencies are completed, their questions answered or not, as when 0011 read them).
  SELECT array_agg(x.task_id), array_agg(x.deps) INTO dep_ids, dep_json FROM (
    SELECT d.task_id, json_agg(json_build_object('id', dt.id, 'title', dt.title, 'persona', dt.persona_id, 'status', ds.status, 'result', ds.result) ORDER BY d.depends_on) AS deps
    FROM task_dependencies d JOIN tasks dt ON dt.id = d.depends_on JOIN task_status ds ON ds.task_id = d.depends_on
    WHERE d.task_id = ANY(ids) GROUP BY d.task_id) AS x;
  SELECT array_agg(x.task_id), array_agg(x.inputs) INTO input_ids, input_json FROM (
    SELECT h.task_id, json_agg(json_build_object('question', h.question, 'answer', h.answer, 'attempt', h.attempt,
              'askedAt', h.asked_at, 'answeredAt', h.answered_at, 'answeredBy', h.answered_by) ORDER BY h.id) AS inputs
    FROM human_requests h WHERE h.task_id = ANY(ids) AND h.kind = 'input' AND h.outcome = 'answered' GROUP BY h.task_id) AS x;
  RETURN QUERY
    WITH claimed AS (
      UPDATE task_status s SET status = 'claimed', attempts = s.attempts + 1, assigned_agent_id = p_agent,
        lease_token = p_token || '.' || s.task_id, lease_ms = p_lease_ms, lease_expires_at = p_now + p_lease_ms,
        claimed_at = p_now, started_at = NULL, progress = NULL, progress_message = NULL, updated_at = p_now
      WHERE s.task_id = ANY(ids)
      RETURNING s.task_id, s.attempts, s.max_attempts, s.lease_token, s.lease_expires_at, s.ready_at, s.run_at, s.priority, s.last_error),
    logged AS (
      INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
      SELECT task_id, 'task:claimed', p_now, p_agent, attempts, '{"leaseExpiresAt" : ' || lease_expires_at || '}' FROM claimed)
    SELECT c.task_id, c.attempts, c.max_attempts, c.lease_token, c.lease_expires_at, c.ready_at, c.run_at, c.priority, c.last_error,
      t.title, t.description, t.persona_id, t.payload, t.parent_id, t.timeout_ms,
      dep_json[array_position(dep_ids, c.task_id)], input_json[array_position(input_ids, c.task_id)]
    FROM claimed c JOIN tasks t ON t.id = c.task_id;
  GET DIAGNOSTICS got = ROW_COUNT;
  -- The room wait as 0011.
  IF got > 0 AND got < p_limit THEN
    INSERT INTO persona_room_waits (persona_id)
    SELECT p_persona WHERE roster_persona_room(p_persona) = 0
      AND EXISTS (SELECT 1 FROM task_status WHERE status = 'pending' AND persona_id = p_persona AND run_at <= p_now)
    ON CONFLICT DO NOTHING;
  END IF;
END $$;

-- roster_complete_batch as 0010, its task:completed rows' data written as text.
CREATE OR REPLACE FUNCTION roster_complete_batch(p_ids bigint[], p_tokens text[], p_results text[], p_now bigint, p_channel text)
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
