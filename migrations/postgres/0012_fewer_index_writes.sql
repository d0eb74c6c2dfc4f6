-- Fewer index entries written per transition (issue 19's throughput target). Every claim and
-- every settle changes a task_status row's status, so none is a HOT update and each writes an
-- entry into every index of task_status whose predicate the new row meets, and each audit row
-- one into every index of task_events. Per task, a claim wrote 4 (primary key, task_status_lease,
-- task_status_agent, task_status_counts) and each of its two task_events rows 3.
--
-- 1. The leased rows keep one partial index, task_status_agent (by agent: a heartbeat renewing
--    an agent's leases, a deregistration, an agent's held count), which is also walked whole
--    for every lease held (the reaper's observation, `roster status`), sorted by renewal stamp
--    after the walk. task_status_lease goes: no index holds lease_expires_at any more, so a
--    renewal, which changes only that, is a HOT update (no index entry at all) when the row's
--    page has room. (A merged index on (assigned_agent_id, task_id), as SQLite's
--    task_status_leased, let the planner look up a settle's rows by task_id through it, a
--    walk of every leased entry, dead ones included, per row: 58 ms a settle in the bench.)
DROP INDEX task_status_lease;

-- 2. The audit's time index is a BRIN index: the audit is appended in time order, so a
--    block range's min and max of `at` find the recent rows the dashboard's throughput reads
--    (src/store/postgres/ui-reads.ts, `at >= since`), and an append writes no entry (ranges
--    are summarized by VACUUM; rows in ranges not yet summarized are read as they are).
DROP INDEX task_events_at;
CREATE INDEX task_events_at ON task_events USING brin (at);
