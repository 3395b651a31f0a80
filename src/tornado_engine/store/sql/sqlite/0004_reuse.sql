-- 0004: reuse (issue 16 point 7). A job that asks for it takes the file of a Completed job of its owner
-- with the same source and output options (tornado_engine.reuse), the newest that ended in the window.
CREATE INDEX jobs_reuse ON jobs (owner, json_extract(data, '$.source_key'), json_extract(data, '$.output_key'),
                                 json_extract(data, '$.finished_at'))
    WHERE status = 'Completed';
