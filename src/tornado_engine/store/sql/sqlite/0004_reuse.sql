-- 0004: reuse (issue 16 point 7). A job that asks for it takes the file of a Completed job of its owner
-- with the same source and output options (tornado_engine.reuse), the newest that ended in the window.
CREATE INDEX jobs_reuse ON jobs (owner, json_extract(data, '$.source_key'), json_extract(data, '$.output_key'),
                                 json_extract(data, '$.finished_at'))
    WHERE status = 'Completed';
-- Identical jobs running at once, in any process sharing this store, make one download: the job that
-- holds the row for its file downloads, the others wait for it to end. A row whose job no longer runs is
-- taken over (its process died); the job deletes it when its attempt ends.
CREATE TABLE reuse_leaders (
    owner      TEXT NOT NULL,
    source_key TEXT NOT NULL,
    output_key TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    PRIMARY KEY (owner, source_key, output_key)
);
CREATE INDEX reuse_leaders_job ON reuse_leaders (job_id);
