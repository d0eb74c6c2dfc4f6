-- Schedules (issue 17's table, issue 19's PostgreSQL store): recurring tasks from cron
-- expressions. The cron arithmetic is code (src/supervisor/scheduler.ts); the store keeps
-- each schedule's cursor, next_fire_at, moved by compare-and-set so one fire is taken by
-- one supervisor, and each fire's task carries the idempotency key schedule:<id>@<ms>.
CREATE TABLE schedules (
  id           text PRIMARY KEY,
  cron         text NOT NULL,
  timezone     text,
  task         text NOT NULL,             -- JSON task template
  missed       text NOT NULL DEFAULT 'skip' CHECK (missed IN ('skip','catch-up-once')),
  source       text,
  paused_at    bigint,
  next_fire_at bigint NOT NULL,
  last_fire_at bigint,
  created_at   bigint NOT NULL,
  updated_at   bigint NOT NULL
);

CREATE INDEX schedules_due ON schedules(next_fire_at) WHERE paused_at IS NULL;
