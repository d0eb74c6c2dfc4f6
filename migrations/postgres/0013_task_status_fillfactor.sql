-- Room on task_status's pages for the new row versions of a claim and a settle (issue 19's
-- throughput target). Neither is a HOT update (the status changes), but a new version that
-- fits on its old row's page dirties one page instead of two and needs no search for free
-- space. Rows are written at enqueue filling pages to 70 %; pruning reclaims the dead
-- versions in place. New pages only: an existing table's pages fill so as they are rewritten.
ALTER TABLE task_status SET (fillfactor = 70);
