-- 0002: what the live views read. A running job's latest progress (JSON, written with its lease renewal
-- at most about once a second) and when its worker last renewed the lease; an index on when jobs ended
-- (the last minute's throughput, the most recent errors).
ALTER TABLE jobs ADD COLUMN progress TEXT;
ALTER TABLE jobs ADD COLUMN heartbeat_at INTEGER;
CREATE INDEX jobs_finished ON jobs (json_extract(data, '$.finished_at'))
    WHERE status IN ('Cancelled', 'Completed', 'Failed', 'Skipped', 'Warning');
