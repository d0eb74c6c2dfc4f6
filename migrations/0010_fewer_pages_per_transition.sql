-- Fewer b-tree pages written per transition (issue 14). Forward only.
--
-- Every index a transition changes is at least one more page in the WAL at its commit, and
-- on this machine each page cost about as much as a statement (bench/RESULTS.md, store).
-- A one-task claim and completion wrote 17.5 pages; these three changes take 4-5 of them
-- away without changing what any read returns (docs/ARCHITECTURE.md rules 2, 5, 6).
--
-- 1. One index of the leased rows instead of two. task_status_lease (lease_expires_at) was
--    rewritten by every renewal as well as by every claim and settlement; the reaper's
--    observation reads every leased row anyway and sorts them itself (they are a few hundred
--    at most). task_status_agent (assigned_agent_id) served the batched heartbeat: kept as
--    the leading column of the one index, with task_id, so a renewal of named leases seeks
--    each of them and no renewal touches the index at all.
DROP INDEX task_status_lease;
DROP INDEX task_status_agent;
CREATE INDEX task_status_leased ON task_status(assigned_agent_id, task_id) WHERE status IN ('claimed','in_progress');

-- 2. The next wake-up index holds only tasks that were delayed when they became pending
--    (run_at later than the write that made them pending: a delayed enqueue, a retry's
--    backoff, a release with a delay). A task ready when written is found by the claim
--    index and never needed here, yet every claim deleted it from this index too. The
--    readers add the same term (src/store/sqlite/queries.ts).
DROP INDEX task_status_run_at;
CREATE INDEX task_status_delayed ON task_status(run_at) WHERE status = 'pending' AND run_at > updated_at;

-- 3. task_events_at went: the dashboard's throughput chart was its only reader, and event ids
--    grow with time, so that read now finds its first event by a binary search of the primary
--    key (src/store/sqlite/ui-reads.ts). One page less for every transition's event row.
DROP INDEX task_events_at;
