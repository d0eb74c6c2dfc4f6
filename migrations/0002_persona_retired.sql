-- A retired persona (roster personas retire ID): kept with its tasks, hidden from
-- persona lists, refused by enqueue and by MCP claims. Epoch ms; NULL = in service.
ALTER TABLE personas ADD COLUMN retired_at INTEGER;
