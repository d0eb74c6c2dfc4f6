-- A schedule with no next fire, as migrations/0013_schedules_no_next_fire.sql on SQLite.
-- next_fire_at NULL now means the expression never fires again; before, the scheduler
-- parked such a schedule at 9007199254740991 (Number.MAX_SAFE_INTEGER), a time no Date can
-- hold, which made `schedule ls`, `resume` and the dashboard fail. A NULL is never due and
-- min() passes over it, so no supervisor fires it or wakes for it. The parked rows become NULL
-- (8640000000000000 ms is the last time a Date holds).
ALTER TABLE schedules ALTER COLUMN next_fire_at DROP NOT NULL;
UPDATE schedules SET next_fire_at = NULL WHERE next_fire_at > 8640000000000000;
