-- 0005: reuse (issue 16 point 7). A job that asks for it takes the file of a Completed job of its owner
-- with the same source and output options (tornado_engine.reuse), the newest that ended in the window.

CREATE INDEX tornado_jobs_reuse ON tornado_jobs
    (owner, (data->>'source_key'), (data->>'output_key'), ((data->>'finished_at')::bigint))
    WHERE status = 'Completed';

-- Identical jobs running at once, on any worker sharing this store, make one download: the job that
-- holds the row for its file downloads, the others wait for it to end. A row whose job no longer runs is
-- taken over (its worker died); the job deletes it when its attempt ends.
CREATE TABLE tornado_reuse_leaders (
    owner      text NOT NULL,
    source_key text NOT NULL,
    output_key text NOT NULL,
    job_id     text NOT NULL,
    PRIMARY KEY (owner, source_key, output_key)
);
CREATE INDEX tornado_reuse_leaders_job ON tornado_reuse_leaders (job_id);
