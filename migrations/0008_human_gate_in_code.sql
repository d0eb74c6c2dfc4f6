-- The approval gate leaves task_status's triggers (issue 14). Forward only.
--
-- human_gate_update (migration 0003) updated task_status from inside an UPDATE trigger on
-- task_status; SQLite paid for it on every one-row status UPDATE, claims and completions
-- included, even when its WHEN was false (about 30-45 us of a claim's 90-125 us;
-- bench/RESULTS.md, history). The gate is now code, called by the few writes that make a
-- task pending (src/store/approval-gate.ts, src/store/sqlite/approvals.ts), in their own
-- transactions, writing the same request and approval:requested event. The insert trigger
-- goes with it: enqueue knows its personas' configs already.
DROP TRIGGER human_gate_insert;
DROP TRIGGER human_gate_update;
