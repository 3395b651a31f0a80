-- 0003: what the live views read. A running job's latest progress (written with its lease renewal, at
-- most about once a second) and when its worker last renewed the lease; an index on when jobs ended
-- (the last minute's throughput, the most recent errors).

ALTER TABLE tornado_jobs ADD COLUMN progress json;
ALTER TABLE tornado_jobs ADD COLUMN heartbeat_at timestamptz;
CREATE INDEX tornado_jobs_finished ON tornado_jobs (((data->>'finished_at')::bigint))
    WHERE status IN ('Cancelled', 'Completed', 'Failed', 'Skipped', 'Warning');
