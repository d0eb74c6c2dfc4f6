-- index agents_active
CREATE INDEX agents_active ON agents(last_heartbeat) WHERE status = 'active';

-- index concurrency_keys_full
CREATE INDEX concurrency_keys_full ON concurrency_keys(key) WHERE running >= max_running;

-- index human_requests_deadline
CREATE INDEX human_requests_deadline ON human_requests(deadline_at) WHERE outcome IS NULL AND deadline_at IS NOT NULL;

-- index human_requests_task
CREATE INDEX human_requests_task ON human_requests(task_id, id);

-- index schedules_due
CREATE INDEX schedules_due ON schedules(next_fire_at) WHERE paused_at IS NULL;

-- index task_dependencies_dependents
CREATE INDEX task_dependencies_dependents ON task_dependencies(depends_on, task_id);

-- index task_events_task
CREATE INDEX task_events_task ON task_events(task_id, id) WHERE task_id IS NOT NULL;

-- index task_status_claim
CREATE INDEX task_status_claim ON task_status(persona_id, priority DESC, run_at, task_id)
  WHERE status = 'pending';

-- index task_status_delayed
CREATE INDEX task_status_delayed ON task_status(run_at) WHERE status = 'pending' AND run_at > updated_at;

-- index task_status_finished
CREATE INDEX task_status_finished ON task_status(finished_at) WHERE finished_at IS NOT NULL;

-- index task_status_leased
CREATE INDEX task_status_leased ON task_status(assigned_agent_id, task_id) WHERE status IN ('claimed','in_progress');

-- index task_status_parked
CREATE INDEX task_status_parked ON task_status(task_id) WHERE status IN ('awaiting_approval','awaiting_input');

-- index tasks_parent
CREATE INDEX tasks_parent ON tasks(parent_id) WHERE parent_id IS NOT NULL;

-- index tasks_root
CREATE INDEX tasks_root ON tasks(root_id) WHERE root_id IS NOT NULL;

-- index usage_at
CREATE INDEX usage_at ON usage(at);

-- index usage_root
CREATE INDEX usage_root ON usage(root_id);

-- index usage_task
CREATE INDEX usage_task ON usage(task_id, attempt);

-- table agents
CREATE TABLE agents (
  id                   TEXT PRIMARY KEY,
  name                 TEXT NOT NULL,
  kind                 TEXT NOT NULL,
  persona_id           TEXT REFERENCES personas(id),
  status               TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','expired','deregistered')),
  pid                  INTEGER,
  hostname             TEXT,
  heartbeat_timeout_ms INTEGER NOT NULL,
  registered_at        INTEGER NOT NULL,
  last_heartbeat       INTEGER NOT NULL
) STRICT;

-- table breaker_windows
CREATE TABLE breaker_windows (
  persona_id   TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  attempts     INTEGER NOT NULL,
  failures     INTEGER NOT NULL,
  PRIMARY KEY (persona_id, window_start)
) STRICT, WITHOUT ROWID;

-- table breakers
CREATE TABLE breakers (
  persona_id           TEXT PRIMARY KEY,
  state                TEXT NOT NULL CHECK (state IN ('closed','open','probing')),
  consecutive_failures INTEGER NOT NULL,
  opens                INTEGER NOT NULL,   -- times opened since it last closed: the cooldown grows with it
  open_until           INTEGER,
  probe_task_id        INTEGER,
  updated_at           INTEGER NOT NULL
) STRICT;

-- table budget_holds
CREATE TABLE budget_holds (
  scope TEXT NOT NULL CHECK (scope IN ('task','goal')),
  key   INTEGER NOT NULL,
  since INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;

-- table budgets
CREATE TABLE budgets (
  scope        TEXT NOT NULL CHECK (scope IN ('task','goal','persona','global')),
  key          TEXT NOT NULL,
  window_ms    INTEGER NOT NULL,
  max_cost_usd REAL,
  max_tokens   INTEGER,
  updated_at   INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;

-- table concurrency_keys
CREATE TABLE concurrency_keys (
  key         TEXT PRIMARY KEY,
  running     INTEGER NOT NULL,   -- tasks of the key claimed or in progress now
  max_running INTEGER NOT NULL    -- the limit the latest task enqueued with the key gave
) STRICT;

-- table human_requests
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

-- table model_prices
CREATE TABLE model_prices (
  model              TEXT PRIMARY KEY,
  input_per_mtok     REAL NOT NULL,
  output_per_mtok    REAL NOT NULL,
  cache_read_per_mtok  REAL NOT NULL,
  cache_write_per_mtok REAL NOT NULL,
  updated_at         INTEGER NOT NULL
) STRICT;

-- table personas
CREATE TABLE personas (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  definition   TEXT NOT NULL,
  config       TEXT NOT NULL,            -- validated front matter, JSON
  source_path  TEXT,
  file_present INTEGER NOT NULL DEFAULT 1,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
, retired_at INTEGER) STRICT;

-- table provider_pauses
CREATE TABLE provider_pauses (
  provider TEXT PRIMARY KEY,
  until    INTEGER,
  reason   TEXT NOT NULL,
  task_id  INTEGER,
  since    INTEGER NOT NULL
) STRICT;

-- table rate_windows
CREATE TABLE rate_windows (
  key          TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  starts       INTEGER NOT NULL,
  PRIMARY KEY (key, window_start)
) STRICT, WITHOUT ROWID;

-- table roster_meta
CREATE TABLE roster_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

-- table schedules
CREATE TABLE "schedules" (
  id           TEXT PRIMARY KEY,
  cron         TEXT NOT NULL,
  timezone     TEXT,                     -- IANA name; NULL = the supervisor's local zone
  task         TEXT NOT NULL,            -- JSON task template (persona, title, description, payload, priority …)
  missed       TEXT NOT NULL DEFAULT 'skip' CHECK (missed IN ('skip','catch-up-once')),
  source       TEXT,                     -- 'cli', or the schedules file it was synced from
  paused_at    INTEGER,
  next_fire_at INTEGER,                  -- NULL: the expression never fires again
  last_fire_at INTEGER,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
) STRICT;

-- table schema_migrations
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT;

-- table spend
CREATE TABLE spend (
  scope        TEXT NOT NULL CHECK (scope IN ('task','goal','persona','provider','global')),
  key          TEXT NOT NULL,           -- task id, root id, persona id, provider; '' for global
  window_ms    INTEGER NOT NULL,
  window_start INTEGER NOT NULL,
  tokens       INTEGER NOT NULL,
  cost_usd     REAL NOT NULL,
  PRIMARY KEY (scope, key, window_ms, window_start)
) STRICT, WITHOUT ROWID;

-- table task_counts
CREATE TABLE task_counts (
  persona_id TEXT NOT NULL,
  status     TEXT NOT NULL,
  n          INTEGER NOT NULL,
  PRIMARY KEY (persona_id, status)
) STRICT, WITHOUT ROWID;

-- table task_dependencies
CREATE TABLE task_dependencies (
  task_id    INTEGER NOT NULL REFERENCES tasks(id),
  depends_on INTEGER NOT NULL REFERENCES tasks(id),
  PRIMARY KEY (task_id, depends_on),
  CHECK (task_id <> depends_on)
) STRICT, WITHOUT ROWID;

-- table task_events
CREATE TABLE task_events (
  id       INTEGER PRIMARY KEY,
  task_id  INTEGER,
  type     TEXT NOT NULL,
  at       INTEGER NOT NULL,
  agent_id TEXT,
  attempt  INTEGER,
  data     TEXT                          -- JSON
) STRICT;

-- table task_keys
CREATE TABLE task_keys (
  task_id INTEGER PRIMARY KEY,
  key     TEXT NOT NULL
) STRICT;

-- table task_status
CREATE TABLE "task_status" (
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

-- table tasks
CREATE TABLE tasks (
  id              INTEGER PRIMARY KEY,
  title           TEXT NOT NULL,
  description     TEXT NOT NULL DEFAULT '',
  persona_id      TEXT NOT NULL REFERENCES personas(id),
  payload         TEXT,                  -- JSON
  parent_id       INTEGER REFERENCES tasks(id),
  root_id         INTEGER,               -- top of the parent chain; NULL for a root
  created_by      TEXT,
  priority        INTEGER NOT NULL DEFAULT 0,
  retry_policy    TEXT NOT NULL,         -- effective policy (persona merged with overrides), JSON
  timeout_ms      INTEGER NOT NULL,
  idempotency_key TEXT UNIQUE,
  created_at      INTEGER NOT NULL
) STRICT;

-- table usage
CREATE TABLE usage (
  id                 INTEGER PRIMARY KEY,
  task_id            INTEGER NOT NULL,
  root_id            INTEGER NOT NULL,   -- the goal: top of the parent chain (the task itself for a root)
  attempt            INTEGER NOT NULL,
  agent_id           TEXT,
  persona_id         TEXT NOT NULL,
  provider           TEXT NOT NULL,      -- persona's provider account, or 'persona:<id>'
  model              TEXT,
  outcome            TEXT NOT NULL,      -- completed | retrying | failed | released
  input_tokens       INTEGER NOT NULL,
  output_tokens      INTEGER NOT NULL,   -- every billed output token, reasoning included
  cache_read_tokens  INTEGER NOT NULL,
  cache_write_tokens INTEGER NOT NULL,
  reasoning_tokens   INTEGER NOT NULL,   -- the part of output_tokens spent thinking
  turns              INTEGER,
  duration_ms        INTEGER,            -- claim to settlement
  cost_usd           REAL,               -- NULL: no reported cost and no price for the model
  cost_source        TEXT NOT NULL CHECK (cost_source IN ('reported','priced','unpriced')),
  at                 INTEGER NOT NULL
) STRICT;

-- trigger concurrency_key_count
CREATE TRIGGER concurrency_key_count AFTER UPDATE OF status ON task_status
  WHEN (new.status IN ('claimed','in_progress')) <> (old.status IN ('claimed','in_progress'))
   AND EXISTS (SELECT 1 FROM task_keys WHERE task_id = new.task_id)
BEGIN
  UPDATE concurrency_keys SET running = running + CASE WHEN new.status IN ('claimed','in_progress') THEN 1 ELSE -1 END
   WHERE key = (SELECT key FROM task_keys WHERE task_id = new.task_id);
END;

-- trigger concurrency_key_delete
CREATE TRIGGER concurrency_key_delete AFTER DELETE ON task_status
  WHEN old.status IN ('claimed','in_progress') AND EXISTS (SELECT 1 FROM task_keys WHERE task_id = old.task_id)
BEGIN
  UPDATE concurrency_keys SET running = running - 1 WHERE key = (SELECT key FROM task_keys WHERE task_id = old.task_id);
END;

-- trigger concurrency_key_guard
CREATE TRIGGER concurrency_key_guard BEFORE UPDATE OF status ON task_status
  WHEN new.status = 'claimed' AND old.status NOT IN ('claimed','in_progress')
   AND EXISTS (SELECT 1 FROM task_keys WHERE task_id = new.task_id)
BEGIN
  SELECT RAISE(IGNORE) FROM task_keys tk JOIN concurrency_keys k ON k.key = tk.key
   WHERE tk.task_id = new.task_id AND k.running >= k.max_running;
END;

-- trigger task_counts_delete
CREATE TRIGGER task_counts_delete AFTER DELETE ON task_status BEGIN
  INSERT INTO task_counts (persona_id, status, n) VALUES (old.persona_id, old.status, -1)
    ON CONFLICT (persona_id, status) DO UPDATE SET n = n - 1;
END;

-- trigger task_counts_insert
CREATE TRIGGER task_counts_insert AFTER INSERT ON task_status BEGIN
  INSERT INTO task_counts (persona_id, status, n) VALUES (new.persona_id, new.status, 1)
    ON CONFLICT (persona_id, status) DO UPDATE SET n = n + 1;
END;

-- trigger task_counts_update
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

-- trigger task_keys_enqueue
CREATE TRIGGER task_keys_enqueue AFTER INSERT ON tasks
  WHEN new.retry_policy ->> '$.concurrencyKey' IS NOT NULL
BEGIN
  INSERT INTO task_keys (task_id, key) VALUES (new.id, new.retry_policy ->> '$.concurrencyKey');
  INSERT INTO concurrency_keys (key, running, max_running)
    VALUES (new.retry_policy ->> '$.concurrencyKey', 0, coalesce(new.retry_policy ->> '$.concurrencyLimit', 1))
    ON CONFLICT (key) DO UPDATE SET max_running = excluded.max_running;
END;

-- trigger task_keys_prune
CREATE TRIGGER task_keys_prune AFTER DELETE ON tasks
  WHEN EXISTS (SELECT 1 FROM task_keys WHERE task_id = old.id)
BEGIN
  DELETE FROM task_keys WHERE task_id = old.id;
END;
