-- 0006: a job's terminal write asks whether its batch has any job still open (the last one to end
-- queues the batch's completion). On (batch_id) alone that read each of the batch's rows; on
-- (batch_id, status) it is one look-up in the index. The old index is this one's prefix.

CREATE INDEX tornado_jobs_batch_status ON tornado_jobs (batch_id, status) WHERE batch_id IS NOT NULL;
DROP INDEX tornado_jobs_batch;
