-- A schedule with no next fire (issue 17's table). Forward only.
--
-- next_fire_at NULL now means the expression never fires again (croner's nextRun gave
-- nothing: a 7-field expression whose year has passed, written before `schedule add`
-- refused them, or a 6-field one with no date left). Before, the scheduler parked such a
-- schedule at 9007199254740991 (Number.MAX_SAFE_INTEGER), a time no Date can hold, which
-- made `schedule ls`, `resume` and the dashboard fail. A NULL is never due
-- (`next_fire_at <= now` is not true) and min() passes over it, so no supervisor fires it
-- or wakes for it. SQLite cannot drop a NOT NULL in place, so the table is rebuilt with
-- the same columns and index; the parked rows become NULL. Nothing references schedules.
CREATE TABLE schedules_new (
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

INSERT INTO schedules_new (id, cron, timezone, task, missed, source, paused_at, next_fire_at, last_fire_at, created_at, updated_at)
  SELECT id, cron, timezone, task, missed, source, paused_at,
         CASE WHEN next_fire_at > 8640000000000000 THEN NULL ELSE next_fire_at END,
         last_fire_at, created_at, updated_at
    FROM schedules;
DROP TABLE schedules;
ALTER TABLE schedules_new RENAME TO schedules;

CREATE INDEX schedules_due ON schedules(next_fire_at) WHERE paused_at IS NULL;
