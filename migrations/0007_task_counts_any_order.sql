-- task_counts must not depend on the order in which AFTER triggers on task_status fire.
-- A human persona's task enqueued ready is parked by human_gate_insert (0003), whose
-- UPDATE to awaiting_approval fires task_counts_update before task_counts_insert has
-- counted the row as pending: the decrement of 'pending' found no row to lower when the
-- persona had none yet, and the later increment left a phantom pending task (roster
-- status, get_progress and --exit-when-idle saw work that did not exist). Counting by
-- upsert both ways makes every +1 and -1 commute; the counts are then rebuilt once.
DROP TRIGGER task_counts_insert;
DROP TRIGGER task_counts_update;
DROP TRIGGER task_counts_delete;

CREATE TRIGGER task_counts_insert AFTER INSERT ON task_status BEGIN
  INSERT INTO task_counts (persona_id, status, n) VALUES (new.persona_id, new.status, 1)
    ON CONFLICT (persona_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER task_counts_update AFTER UPDATE OF status ON task_status WHEN old.status <> new.status BEGIN
  INSERT INTO task_counts (persona_id, status, n) VALUES (old.persona_id, old.status, -1)
    ON CONFLICT (persona_id, status) DO UPDATE SET n = n - 1;
  INSERT INTO task_counts (persona_id, status, n) VALUES (new.persona_id, new.status, 1)
    ON CONFLICT (persona_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER task_counts_delete AFTER DELETE ON task_status BEGIN
  INSERT INTO task_counts (persona_id, status, n) VALUES (old.persona_id, old.status, -1)
    ON CONFLICT (persona_id, status) DO UPDATE SET n = n - 1;
END;

DELETE FROM task_counts;
INSERT INTO task_counts (persona_id, status, n) SELECT persona_id, status, count(*) FROM task_status GROUP BY persona_id, status;
