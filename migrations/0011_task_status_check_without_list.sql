-- task_status's state CHECK as a chain of comparisons (issue 14). Forward only.
--
-- SQLite codes a CHECK's `status IN (ten constants)` as an ephemeral b-tree built, filled
-- and freed by every statement that changes a status: a claim and its completion built two
-- (EXPLAIN shows the OpenEphemeral and its ten IdxInserts), which cost a one-row UPDATE about
-- four times its own work on this machine (20 us against 5 us, in memory). The same states
-- written as `=` comparisons joined by OR are checked in place. Nothing else changes: the
-- same columns in the same order (0009's two appended at the end), the same indexes and the
-- same triggers, as 0003 rebuilt the table before. Nothing references task_status.
DROP TRIGGER task_counts_insert;
DROP TRIGGER task_counts_update;
DROP TRIGGER task_counts_delete;
DROP TRIGGER concurrency_key_guard;
DROP TRIGGER concurrency_key_count;
DROP TRIGGER concurrency_key_delete;

CREATE TABLE task_status_new (
  task_id           INTEGER PRIMARY KEY REFERENCES tasks(id),
  status            TEXT NOT NULL CHECK (status = 'waiting' OR status = 'pending' OR status = 'claimed'
                      OR status = 'in_progress' OR status = 'completed' OR status = 'failed' OR status = 'cancelled'
                      OR status = 'blocked' OR status = 'awaiting_approval' OR status = 'awaiting_input'),
  persona_id        TEXT NOT NULL,
  priority          INTEGER NOT NULL,
  unmet_deps        INTEGER NOT NULL DEFAULT 0 CHECK (unmet_deps >= 0),
  run_at            INTEGER NOT NULL,
  ready_at          INTEGER,
  attempts          INTEGER NOT NULL DEFAULT 0,
  max_attempts      INTEGER NOT NULL,
  assigned_agent_id TEXT,
  lease_token       TEXT,
  lease_ms          INTEGER,
  lease_expires_at  INTEGER,
  claimed_at        INTEGER,
  started_at        INTEGER,
  finished_at       INTEGER,
  progress          REAL,
  progress_message  TEXT,
  result            TEXT,
  last_error        TEXT,
  updated_at        INTEGER NOT NULL,
  leases_lost       INTEGER NOT NULL DEFAULT 0,
  reaped_token      TEXT
) STRICT;

INSERT INTO task_status_new SELECT * FROM task_status;
DROP TABLE task_status;
ALTER TABLE task_status_new RENAME TO task_status;

CREATE INDEX task_status_claim ON task_status(persona_id, priority DESC, run_at, task_id)
  WHERE status = 'pending';
CREATE INDEX task_status_delayed ON task_status(run_at) WHERE status = 'pending' AND run_at > updated_at;
CREATE INDEX task_status_leased ON task_status(assigned_agent_id, task_id) WHERE status IN ('claimed','in_progress');
CREATE INDEX task_status_finished ON task_status(finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX task_status_parked ON task_status(task_id) WHERE status IN ('awaiting_approval','awaiting_input');

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

CREATE TRIGGER concurrency_key_guard BEFORE UPDATE OF status ON task_status
  WHEN new.status = 'claimed' AND old.status NOT IN ('claimed','in_progress')
   AND EXISTS (SELECT 1 FROM task_keys WHERE task_id = new.task_id)
BEGIN
  SELECT RAISE(IGNORE) FROM task_keys tk JOIN concurrency_keys k ON k.key = tk.key
   WHERE tk.task_id = new.task_id AND k.running >= k.max_running;
END;

CREATE TRIGGER concurrency_key_count AFTER UPDATE OF status ON task_status
  WHEN (new.status IN ('claimed','in_progress')) <> (old.status IN ('claimed','in_progress'))
   AND EXISTS (SELECT 1 FROM task_keys WHERE task_id = new.task_id)
BEGIN
  UPDATE concurrency_keys SET running = running + CASE WHEN new.status IN ('claimed','in_progress') THEN 1 ELSE -1 END
   WHERE key = (SELECT key FROM task_keys WHERE task_id = new.task_id);
END;

CREATE TRIGGER concurrency_key_delete AFTER DELETE ON task_status
  WHEN old.status IN ('claimed','in_progress') AND EXISTS (SELECT 1 FROM task_keys WHERE task_id = old.task_id)
BEGIN
  UPDATE concurrency_keys SET running = running - 1 WHERE key = (SELECT key FROM task_keys WHERE task_id = old.task_id);
END;
