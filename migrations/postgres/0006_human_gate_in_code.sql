-- The approval gate leaves task_status's triggers (issue 14). Forward only.
-- As migrations/0008_human_gate_in_code.sql on SQLite: the gate is code, called by the
-- few writes that make a task pending (src/store/approval-gate.ts,
-- src/store/postgres/approvals.ts), in their own transactions, writing the same request
-- and approval:requested event; one implementation for both engines.
DROP TRIGGER human_gate_insert ON task_status;
DROP TRIGGER human_gate_update ON task_status;
DROP FUNCTION roster_human_gate();
