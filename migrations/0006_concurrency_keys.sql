-- Economics, second part (issue 16): concurrency keys and failure-rate breakers.

-- 1. Concurrency keys. A task's policy.concurrencyKey (a repository, a file scope) with
--    policy.concurrencyLimit (default 1): at most that many tasks of the key are claimed
--    or in progress at once, across every process sharing the database. Kept by triggers,
--    so every path that starts or ends an attempt (claim, claim by id, complete, fail,
--    release, cancel, the reaper, deregistration) counts without knowing of keys.
CREATE TABLE concurrency_keys (
  key         TEXT PRIMARY KEY,
  running     INTEGER NOT NULL,   -- tasks of the key claimed or in progress now
  max_running INTEGER NOT NULL    -- the limit the latest task enqueued with the key gave
) STRICT;

-- The claim reads "is any key full?" on every claim: a partial index keeps that one probe.
CREATE INDEX concurrency_keys_full ON concurrency_keys(key) WHERE running >= max_running;

-- The key of each keyed task (tasks without one have no row, so the triggers below
-- cost one primary-key probe into a small table on every status change).
CREATE TABLE task_keys (
  task_id INTEGER PRIMARY KEY,
  key     TEXT NOT NULL
) STRICT;

CREATE TRIGGER task_keys_enqueue AFTER INSERT ON tasks
  WHEN new.retry_policy ->> '$.concurrencyKey' IS NOT NULL
BEGIN
  INSERT INTO task_keys (task_id, key) VALUES (new.id, new.retry_policy ->> '$.concurrencyKey');
  INSERT INTO concurrency_keys (key, running, max_running)
    VALUES (new.retry_policy ->> '$.concurrencyKey', 0, coalesce(new.retry_policy ->> '$.concurrencyLimit', 1))
    ON CONFLICT (key) DO UPDATE SET max_running = excluded.max_running;
END;

CREATE TRIGGER task_keys_prune AFTER DELETE ON tasks
  WHEN EXISTS (SELECT 1 FROM task_keys WHERE task_id = old.id)
BEGIN
  DELETE FROM task_keys WHERE task_id = old.id;
END;

-- The claim's guard: a row whose key is at its limit is left pending (RAISE(IGNORE) skips
-- this row and the statement goes on with the next), so one claim statement taking
-- several tasks of a key takes no more than the limit. The claim's candidate seek also
-- skips full keys (CLAIM_SKIPPING_HELD_SQL), so they never crowd out other work.
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

-- 2. Failure-rate breakers: attempts and failures per persona per fixed window
--    (persona setting breaker.failureRate with windowMs and minAttempts).
CREATE TABLE breaker_windows (
  persona_id   TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  attempts     INTEGER NOT NULL,
  failures     INTEGER NOT NULL,
  PRIMARY KEY (persona_id, window_start)
) STRICT, WITHOUT ROWID;
