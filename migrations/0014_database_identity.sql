-- Who this database is, for what it leaves outside itself: the git branches, worktrees and
-- wip refs of agent attempts are named after it (src/workspace/owner.ts), so that another
-- database on the same repository (or a new one after the file was deleted) never takes them
-- for its own tasks'. Written here, read only.
--   database_id           random, fixed for the database's life (copied by `roster db copy`)
--   legacy_task_ids_upto  the highest task id when this migration ran: tasks up to it were
--                         created before databases had an id, and keep the old names
--   task_id_high_water    the highest task id ever given (raised by `roster prune`), so a task
--                         id is never given twice even after the newest tasks are pruned
CREATE TABLE roster_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

INSERT INTO roster_meta (key, value)
SELECT 'database_id', 'r' || lower(hex(randomblob(5)))
UNION ALL SELECT 'legacy_task_ids_upto', CAST(coalesce(max(id), 0) AS TEXT) FROM tasks
UNION ALL SELECT 'task_id_high_water', CAST(coalesce(max(id), 0) AS TEXT) FROM tasks;
