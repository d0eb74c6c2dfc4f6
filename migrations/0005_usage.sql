-- Economics (issue 16): what attempts spend, and the gates the claim checks.
-- Times are epoch ms from the application's clock; money is US dollars (REAL).

-- One row per attempt that reported usage, written in the transaction that records
-- the attempt's outcome (DESIGN rule 15). No foreign key to tasks: cost history
-- outlives `roster prune`.
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

CREATE INDEX usage_task ON usage(task_id, attempt);
CREATE INDEX usage_root ON usage(root_id);
CREATE INDEX usage_at ON usage(at);

-- Running totals the claim reads in O(1): per task and goal for all time
-- (window_ms 0, window_start 0), per persona, provider and overall per hour and day.
CREATE TABLE spend (
  scope        TEXT NOT NULL CHECK (scope IN ('task','goal','persona','provider','global')),
  key          TEXT NOT NULL,           -- task id, root id, persona id, provider; '' for global
  window_ms    INTEGER NOT NULL,
  window_start INTEGER NOT NULL,
  tokens       INTEGER NOT NULL,
  cost_usd     REAL NOT NULL,
  PRIMARY KEY (scope, key, window_ms, window_start)
) STRICT, WITHOUT ROWID;

-- Limits set with `roster budget set|raise` (a task's own policy.maxCostUsd / maxTokens
-- is read from its policy). window_ms 0 for task and goal budgets.
CREATE TABLE budgets (
  scope        TEXT NOT NULL CHECK (scope IN ('task','goal','persona','global')),
  key          TEXT NOT NULL,
  window_ms    INTEGER NOT NULL,
  max_cost_usd REAL,
  max_tokens   INTEGER,
  updated_at   INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;

-- Tasks and goals whose budget is spent: the claim skips their pending tasks.
CREATE TABLE budget_holds (
  scope TEXT NOT NULL CHECK (scope IN ('task','goal')),
  key   INTEGER NOT NULL,
  since INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
) STRICT, WITHOUT ROWID;

-- A provider account paused after a rate or usage limit; 'persona:<id>' when the
-- persona names no provider. until NULL: until resumed by hand.
CREATE TABLE provider_pauses (
  provider TEXT PRIMARY KEY,
  until    INTEGER,
  reason   TEXT NOT NULL,
  task_id  INTEGER,
  since    INTEGER NOT NULL
) STRICT;

-- Circuit breaker per persona.
CREATE TABLE breakers (
  persona_id           TEXT PRIMARY KEY,
  state                TEXT NOT NULL CHECK (state IN ('closed','open','probing')),
  consecutive_failures INTEGER NOT NULL,
  opens                INTEGER NOT NULL,   -- times opened since it last closed: the cooldown grows with it
  open_until           INTEGER,
  probe_task_id        INTEGER,
  updated_at           INTEGER NOT NULL
) STRICT;

-- Starts per fixed window per persona or provider (rate limits), shared by every supervisor.
CREATE TABLE rate_windows (
  key          TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  starts       INTEGER NOT NULL,
  PRIMARY KEY (key, window_start)
) STRICT, WITHOUT ROWID;

-- Per-model prices the user set (USD per million tokens); defaults live in src/policy/prices.ts.
CREATE TABLE model_prices (
  model              TEXT PRIMARY KEY,
  input_per_mtok     REAL NOT NULL,
  output_per_mtok    REAL NOT NULL,
  cache_read_per_mtok  REAL NOT NULL,
  cache_write_per_mtok REAL NOT NULL,
  updated_at         INTEGER NOT NULL
) STRICT;
