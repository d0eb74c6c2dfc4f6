-- A persona's concurrency is held by the store (docs/ARCHITECTURE.md rule 15): at most
-- config.concurrency of its tasks are leased (claimed or in progress) at once, across every
-- claimant sharing the database: supervisors on any host, MCP agents, `roster run`.
-- SQLite counts them from task_counts under its one write lock; here hosts claim at once,
-- so a claim first takes the persona's transaction-scoped advisory lock and then counts
-- its leased rows (the index task_status_counts). The function is VOLATILE: in READ
-- COMMITTED its count runs on a snapshot taken after the lock was granted, so it sees every
-- claim committed by the previous holder of the lock (the claim statement's own snapshot is
-- older). The lock is held until the claim commits; claims of one persona count one after
-- another, claims of different personas do not wait for each other. Used in the claim
-- statement's LIMIT (src/store/postgres/claims.ts). A persona without the setting has no
-- limit.
CREATE FUNCTION roster_persona_room(p_persona text) RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  persona_limit integer;
  leased bigint;
BEGIN
  SELECT (config::jsonb ->> 'concurrency')::integer INTO persona_limit FROM personas WHERE id = p_persona;
  IF persona_limit IS NULL THEN
    RETURN 2147483647;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('roster:persona:' || p_persona, 0));
  SELECT count(*) INTO leased FROM task_status WHERE persona_id = p_persona AND status IN ('claimed','in_progress');
  RETURN greatest(persona_limit - leased, 0);
END $$;
