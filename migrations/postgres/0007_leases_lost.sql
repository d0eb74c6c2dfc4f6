-- Lost leases (docs/ARCHITECTURE.md rule 6; src/store/lost-leases.ts): a reaped attempt is not
-- counted against max_attempts; the task's leases_lost counts it, against a bound of its own.
-- reaped_token is the last reaped lease's token: its holder, back, gives that lease back.
ALTER TABLE task_status ADD COLUMN leases_lost integer NOT NULL DEFAULT 0, ADD COLUMN reaped_token text;
