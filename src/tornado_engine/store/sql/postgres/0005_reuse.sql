-- 0005: reuse (issue 16 point 7). A job that asks for it takes the file of a Completed job of its owner
-- with the same source and output options (tornado_engine.reuse), the newest that ended in the window.

CREATE INDEX tornado_jobs_reuse ON tornado_jobs
    (owner, (data->>'source_key'), (data->>'output_key'), ((data->>'finished_at')::bigint))
    WHERE status = 'Completed';
