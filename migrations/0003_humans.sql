-- Humans in the loop and schedules (issue 17). Forward only.
--
-- 1. Two task states of their own for work parked for a person: 'awaiting_approval'
--    (a task of a persona whose adapter kind is 'human': no supervisor or worker ever
--    claims it; `roster approve` completes it, `roster reject` fails it) and
--    'awaiting_input' (an attempt asked a question: its lease was released without
--    counting the attempt; `roster answer` returns it to 'pending'). Neither holds a
--    lease, and neither is in the claim index (it only holds 'pending' rows).
--    SQLite cannot change a CHECK constraint in place, so task_status is rebuilt with
--    the same columns, indexes and count triggers. Nothing references task_status.
DROP TRIGGER task_counts_insert;
DROP TRIGGER task_counts_update;
DROP TRIGGER task_counts_delete;

CREATE TABLE task_status_new (
  task_id           INTEGER PRIMARY KEY REFERENCES tasks(id),
  status            TEXT NOT NULL CHECK (status IN
                      ('waiting','pending','claimed','in_progress','completed','failed','cancelled','blocked',
                       'awaiting_approval','awaiting_input')),
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
  updated_at        INTEGER NOT NULL
) STRICT;

INSERT INTO task_status_new SELECT * FROM task_status;
DROP TABLE task_status;
ALTER TABLE task_status_new RENAME TO task_status;

CREATE INDEX task_status_claim ON task_status(persona_id, priority DESC, run_at, task_id)
  WHERE status = 'pending';
CREATE INDEX task_status_run_at ON task_status(run_at) WHERE status = 'pending';
CREATE INDEX task_status_lease ON task_status(lease_expires_at) WHERE status IN ('claimed','in_progress');
CREATE INDEX task_status_agent ON task_status(assigned_agent_id) WHERE status IN ('claimed','in_progress');
CREATE INDEX task_status_finished ON task_status(finished_at) WHERE finished_at IS NOT NULL;
-- Tasks parked for a person (roster status, metrics, MCP get_progress).
CREATE INDEX task_status_parked ON task_status(task_id) WHERE status IN ('awaiting_approval','awaiting_input');

CREATE TRIGGER task_counts_insert AFTER INSERT ON task_status BEGIN
  INSERT INTO task_counts (persona_id, status, n) VALUES (new.persona_id, new.status, 1)
    ON CONFLICT (persona_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER task_counts_update AFTER UPDATE OF status ON task_status WHEN old.status <> new.status BEGIN
  UPDATE task_counts SET n = n - 1 WHERE persona_id = old.persona_id AND status = old.status;
  INSERT INTO task_counts (persona_id, status, n) VALUES (new.persona_id, new.status, 1)
    ON CONFLICT (persona_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER task_counts_delete AFTER DELETE ON task_status BEGIN
  UPDATE task_counts SET n = n - 1 WHERE persona_id = old.persona_id AND status = old.status;
END;

-- 2. What a person was asked and what they said: one row per approval gate reached
--    and per question an attempt asked. The open row of a parked task has outcome NULL.
CREATE TABLE human_requests (
  id              INTEGER PRIMARY KEY,
  task_id         INTEGER NOT NULL REFERENCES tasks(id),
  kind            TEXT NOT NULL CHECK (kind IN ('approval','input')),
  question        TEXT NOT NULL,         -- approval: the task's title and description (a plan in full); input: the question
  asked_by        TEXT,                  -- agent whose attempt asked (input)
  attempt         INTEGER,               -- the attempt that asked (not counted)
  asked_at        INTEGER NOT NULL,
  deadline_at     INTEGER,               -- approval: when default_outcome applies by itself
  default_outcome TEXT CHECK (default_outcome IN ('approve','reject')),
  outcome         TEXT CHECK (outcome IN ('approved','rejected','answered')),
  answer          TEXT,                  -- the approval note, the rejection reason, or the answer
  answered_by     TEXT,
  answered_at     INTEGER
) STRICT;

CREATE INDEX human_requests_task ON human_requests(task_id, id);
CREATE INDEX human_requests_deadline ON human_requests(deadline_at) WHERE outcome IS NULL AND deadline_at IS NOT NULL;

-- 3. The approval gate: a task of a 'human' persona that becomes ready parks for a
--    person instead of entering the claim index. Written as triggers so every path that
--    readies a task (enqueue, a dependency completing, unblock, retry) gates it the same
--    way, in the transaction of that transition. The deadline comes from the task's
--    payload (approval.deadlineMs, approval.default) or else the persona's adapter
--    (deadlineMs, default). Times are the transition's own updated_at (the app's clock).
CREATE TRIGGER human_gate_insert AFTER INSERT ON task_status
  WHEN new.status = 'pending'
   AND (SELECT config ->> '$.adapter.kind' FROM personas WHERE id = new.persona_id) = 'human'
BEGIN
  UPDATE task_status SET status = 'awaiting_approval', ready_at = NULL WHERE task_id = new.task_id;
  INSERT INTO human_requests (task_id, kind, question, asked_at, deadline_at, default_outcome)
    SELECT t.id, 'approval',
           t.title || CASE WHEN t.description = '' THEN '' ELSE char(10) || char(10) || t.description END,
           new.updated_at,
           new.updated_at + coalesce(t.payload ->> '$.approval.deadlineMs', p.config ->> '$.adapter.deadlineMs'),
           coalesce(t.payload ->> '$.approval.default', p.config ->> '$.adapter.default')
    FROM tasks t JOIN personas p ON p.id = t.persona_id WHERE t.id = new.task_id;
  INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
    SELECT new.task_id, 'approval:requested', new.updated_at, NULL, new.attempts,
           json_object('requestId', r.id, 'deadlineAt', r.deadline_at, 'default', r.default_outcome)
    FROM human_requests r WHERE r.id = last_insert_rowid();
END;

CREATE TRIGGER human_gate_update AFTER UPDATE OF status ON task_status
  WHEN new.status = 'pending' AND old.status <> 'pending'
   AND (SELECT config ->> '$.adapter.kind' FROM personas WHERE id = new.persona_id) = 'human'
BEGIN
  UPDATE task_status SET status = 'awaiting_approval', ready_at = NULL WHERE task_id = new.task_id;
  INSERT INTO human_requests (task_id, kind, question, asked_at, deadline_at, default_outcome)
    SELECT t.id, 'approval',
           t.title || CASE WHEN t.description = '' THEN '' ELSE char(10) || char(10) || t.description END,
           new.updated_at,
           new.updated_at + coalesce(t.payload ->> '$.approval.deadlineMs', p.config ->> '$.adapter.deadlineMs'),
           coalesce(t.payload ->> '$.approval.default', p.config ->> '$.adapter.default')
    FROM tasks t JOIN personas p ON p.id = t.persona_id WHERE t.id = new.task_id;
  INSERT INTO task_events (task_id, type, at, agent_id, attempt, data)
    SELECT new.task_id, 'approval:requested', new.updated_at, NULL, new.attempts,
           json_object('requestId', r.id, 'deadlineAt', r.deadline_at, 'default', r.default_outcome)
    FROM human_requests r WHERE r.id = last_insert_rowid();
END;

-- 4. Schedules: recurring tasks from cron expressions. The cron arithmetic is code
--    (src/supervisor/scheduler.ts); the store keeps each schedule's cursor, next_fire_at,
--    moved forward by compare-and-set so one fire is taken by one supervisor, and each
--    fire's task carries the idempotency key schedule:<id>@<fire time ms>.
CREATE TABLE schedules (
  id           TEXT PRIMARY KEY,
  cron         TEXT NOT NULL,
  timezone     TEXT,                     -- IANA name; NULL = the supervisor's local zone
  task         TEXT NOT NULL,            -- JSON task template (persona, title, description, payload, priority …)
  missed       TEXT NOT NULL DEFAULT 'skip' CHECK (missed IN ('skip','catch-up-once')),
  source       TEXT,                     -- 'cli', or the schedules file it was synced from
  paused_at    INTEGER,
  next_fire_at INTEGER NOT NULL,
  last_fire_at INTEGER,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX schedules_due ON schedules(next_fire_at) WHERE paused_at IS NULL;
