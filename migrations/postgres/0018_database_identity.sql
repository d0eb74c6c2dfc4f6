-- Who this database is, for what it leaves outside itself: the git branches, worktrees and
-- wip refs of agent attempts are named after it (src/workspace/owner.ts), so that another
-- database on the same repository never takes them for its own tasks'. Written here, read only.
--   database_id           random, fixed for the database's life (copied by `roster db copy`)
--   legacy_task_ids_upto  the highest task id when this migration ran: tasks up to it were
--                         created before databases had an id, and keep the old names
-- Task ids come from a sequence here and are never given twice (SQLite keeps a high-water mark).
CREATE TABLE roster_meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);

INSERT INTO roster_meta (key, value)
SELECT 'database_id', 'r' || substr(md5(random()::text || clock_timestamp()::text), 1, 10)
UNION ALL SELECT 'legacy_task_ids_upto', coalesce(max(id), 0)::text FROM tasks;
