-- The supervisor's two one-round-trip functions plan their statements once per connection
-- (issue 19's throughput target). plpgsql keeps a plan per statement per connection, but
-- PostgreSQL's plan cache plans each statement with the call's values for its first five
-- runs on a connection before it settles on the generic plan: on a queue just enqueued (no
-- statistics yet) those custom plans took the claimed ids (`task_id = ANY(ids)`, 128 values)
-- for most of the table and read task_status and tasks by sequential scan, 15 ms a claim and
-- 10 ms a completion instead of 6 and 5, on each of the store's 8 pooled connections. The
-- generic plans are what the plan tests check (test/store/postgres-plan.test.ts,
-- test/store/postgres-deep-claim-plan.test.ts, with plan_cache_mode = force_generic_plan):
-- seeks by index that hold at any depth. The setting holds for the call, and the functions it
-- calls (roster_persona_room, roster_room_freed); every other statement plans as before.
-- A later CREATE OR REPLACE FUNCTION of either replaces this setting too: repeat it there.
ALTER FUNCTION roster_claim(bigint, text, text, bigint, text, integer) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION roster_complete_batch(bigint[], text[], text[], bigint, text) SET plan_cache_mode = force_generic_plan;
