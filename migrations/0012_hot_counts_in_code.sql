-- task_counts: the hot path's two transitions counted by their statements (issue 14). Forward only.
--
-- A claim (pending -> claimed) and the completion of a leased task (claimed or in_progress ->
-- completed) are counted once per statement by the code that makes them
-- (src/store/sqlite/task-counts.ts), not row by row here: for each row this trigger ran two
-- upserts in a sub-program, about 30k instructions, 60k a task (under cachegrind, a third
-- of a one-task claim and completion's SQL). Every other change of state is counted here
-- as before; inserts and deletes too.
DROP TRIGGER task_counts_update;

CREATE TRIGGER task_counts_update AFTER UPDATE OF status ON task_status
  WHEN old.status <> new.status
   AND NOT (old.status = 'pending' AND new.status = 'claimed')
   AND NOT (new.status = 'completed' AND (old.status = 'claimed' OR old.status = 'in_progress'))
BEGIN
  INSERT INTO task_counts (persona_id, status, n) VALUES (old.persona_id, old.status, -1)
    ON CONFLICT (persona_id, status) DO UPDATE SET n = n - 1;
  INSERT INTO task_counts (persona_id, status, n) VALUES (new.persona_id, new.status, 1)
    ON CONFLICT (persona_id, status) DO UPDATE SET n = n + 1;
END;
