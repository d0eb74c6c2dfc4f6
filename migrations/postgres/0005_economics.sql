-- The claim's economic gates on PostgreSQL (issue 16's tables, issue 19's store): running
-- spend totals, budgets and the holds they put on tasks and goals, provider pauses,
-- circuit breakers (and their failure-rate windows), starts per rate window, concurrency
-- keys. The same tables and meanings as SQLite's migrations/0005_usage.sql and
-- 0006_concurrency_keys.sql; the rules that move them are src/store/gates.ts (shared)
-- and src/store/postgres/gates.ts. Times are bigint epoch ms; money is US dollars.

-- Running totals the claim and the settlement read by primary key: per task and goal for
-- all time (window_ms 0, window_start 0), per persona, provider and overall per hour and day.
CREATE TABLE spend (
  scope        text NOT NULL CHECK (scope IN ('task','goal','persona','provider','global')),
  key          text NOT NULL,
  window_ms    bigint NOT NULL,
  window_start bigint NOT NULL,
  tokens       bigint NOT NULL,
  cost_usd     double precision NOT NULL,
  PRIMARY KEY (scope, key, window_ms, window_start)
);

-- Limits set with `roster budget set|raise` (a task's own policy.maxCostUsd / maxTokens is
-- read from its policy). window_ms 0 for task and goal budgets.
CREATE TABLE budgets (
  scope        text NOT NULL CHECK (scope IN ('task','goal','persona','global')),
  key          text NOT NULL,
  window_ms    bigint NOT NULL,
  max_cost_usd double precision,
  max_tokens   bigint,
  updated_at   bigint NOT NULL,
  PRIMARY KEY (scope, key)
);

-- Tasks and goals whose budget is spent: the claim skips their pending tasks.
CREATE TABLE budget_holds (
  scope text NOT NULL CHECK (scope IN ('task','goal')),
  key   bigint NOT NULL,
  since bigint NOT NULL,
  PRIMARY KEY (scope, key)
);

-- A provider account paused after a rate or usage limit; 'persona:<id>' when the persona
-- names no provider. until NULL: until resumed by hand.
CREATE TABLE provider_pauses (
  provider text PRIMARY KEY,
  until    bigint,
  reason   text NOT NULL,
  task_id  bigint,
  since    bigint NOT NULL
);

-- Circuit breaker per persona. Its row is the lock that orders every change to it: a
-- settlement upserts it, a claim deciding on a probe reads it FOR UPDATE.
CREATE TABLE breakers (
  persona_id           text PRIMARY KEY,
  state                text NOT NULL CHECK (state IN ('closed','open','probing')),
  consecutive_failures integer NOT NULL,
  opens                integer NOT NULL,
  open_until           bigint,
  probe_task_id        bigint,
  updated_at           bigint NOT NULL
);

-- Attempts and failures per persona per fixed window (failure-rate breakers).
CREATE TABLE breaker_windows (
  persona_id   text NOT NULL,
  window_start bigint NOT NULL,
  attempts     integer NOT NULL,
  failures     integer NOT NULL,
  PRIMARY KEY (persona_id, window_start)
);

-- Starts per fixed window per rate-limit key, shared by every supervisor. A claim of a
-- rate-limited persona locks its window's row (an upsert) before it claims, so claimers
-- on several hosts take the window's starts one after another and never overshoot.
CREATE TABLE rate_windows (
  key          text NOT NULL,
  window_start bigint NOT NULL,
  starts       integer NOT NULL,
  PRIMARY KEY (key, window_start)
);

-- Concurrency keys: a task's policy.concurrencyKey is copied onto its task_status row at
-- enqueue; concurrency_keys holds each key's limit (the latest task enqueued with the key
-- sets it). The running count is not a counter that every settlement would have to lock
-- (settlements on several hosts would then queue and deadlock on the key rows): it is
-- counted from the leased rows of the key through this partial index, at most the limit.
ALTER TABLE task_status ADD COLUMN concurrency_key text;
CREATE INDEX task_status_key_running ON task_status(concurrency_key)
  WHERE concurrency_key IS NOT NULL AND status IN ('claimed','in_progress');

CREATE TABLE concurrency_keys (
  key         text PRIMARY KEY,
  max_running integer NOT NULL
);

-- The claim's guard, on every path into a lease (claim, claim by id). A row whose key is at
-- its limit is left as it was (a BEFORE trigger returning NULL skips the row, and the
-- statement goes on with the next), so one claim asking for several tasks of a key takes
-- no more than the limit. The key's row is locked first, so claims of one key on several
-- hosts count one after another (READ COMMITTED: the count after the lock sees every
-- committed claim; rows claimed earlier by the same statement are visible to it too).
-- SKIP LOCKED: a claim never waits for another claim's key (two claims taking keys in
-- opposite orders would deadlock); the task is left for a later claim instead.
CREATE FUNCTION roster_concurrency_key_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  key_limit integer;
  key_running bigint;
BEGIN
  SELECT max_running INTO key_limit FROM concurrency_keys WHERE key = NEW.concurrency_key FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  SELECT count(*) INTO key_running FROM task_status
    WHERE concurrency_key = NEW.concurrency_key AND status IN ('claimed','in_progress');
  IF key_running >= key_limit THEN
    RETURN NULL;
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER concurrency_key_guard BEFORE UPDATE OF status ON task_status FOR EACH ROW
  WHEN (NEW.concurrency_key IS NOT NULL AND NEW.status IN ('claimed','in_progress') AND OLD.status NOT IN ('claimed','in_progress'))
  EXECUTE FUNCTION roster_concurrency_key_guard();
