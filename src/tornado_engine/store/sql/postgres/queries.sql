-- The PostgreSQL store's queries, by name (see store/sqlfiles.py). Parameters are %s; ``{terminal}`` is the
-- list of terminal statuses. Times are the database's (now()), never a worker's clock.

-- name: insert_job
-- runnable now, but in submit order: a client clock running ahead must not delay its own jobs
INSERT INTO tornado_jobs (id, owner, status, stored_bytes, reserved_bytes, data, created_at, available_at,
                          batch_id, paused, idempotency_key)
VALUES (%s, %s, %s, %s, %s, %s, %s, LEAST(now(), to_timestamp(%s::float8 / 1000)), %s, %s, %s)

-- name: insert_keyed_job
-- insert_job for a job with an idempotency key: of two submits racing with one key, the second inserts
-- nothing (and reads the first's job)
INSERT INTO tornado_jobs (id, owner, status, stored_bytes, reserved_bytes, data, created_at, available_at,
                          batch_id, paused, idempotency_key)
VALUES (%s, %s, %s, %s, %s, %s, %s, LEAST(now(), to_timestamp(%s::float8 / 1000)), %s, %s, %s)
ON CONFLICT (owner, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id

-- name: job_by_key
SELECT status, data FROM tornado_jobs WHERE owner = %s AND idempotency_key = %s

-- name: insert_batch
INSERT INTO tornado_batches (id, owner, created_at, paused, data) VALUES (%s, %s, %s, %s, %s)

-- name: get_job
SELECT status, data, progress FROM tornado_jobs WHERE id = %s AND (%s::text IS NULL OR owner = %s)

-- name: list_jobs
SELECT status, data, progress FROM tornado_jobs
WHERE (%s::text IS NULL OR owner = %s) AND (%s::text IS NULL OR status = %s)
ORDER BY created_at DESC, seq DESC LIMIT %s OFFSET %s

-- name: get_batch
SELECT owner, created_at, paused, data FROM tornado_batches WHERE id = %s AND (%s::text IS NULL OR owner = %s)

-- name: batch_counts
SELECT count(*) FILTER (WHERE status = 'Completed'),
       count(*) FILTER (WHERE status IN ({terminal}) AND status <> 'Completed')
FROM tornado_jobs WHERE batch_id = %s

-- name: pause_batch
UPDATE tornado_batches SET paused = %s WHERE id = %s

-- name: pause_batch_jobs
-- rows locked in id order (as the heartbeat does), so two multi-row lockers cannot deadlock
UPDATE tornado_jobs SET paused = %s
WHERE id IN (SELECT id FROM tornado_jobs WHERE batch_id = %s ORDER BY id FOR UPDATE)

-- name: usage
SELECT status, count(*), coalesce(sum(stored_bytes), 0), coalesce(sum(reserved_bytes), 0)
FROM tornado_jobs WHERE (%s::text IS NULL OR owner = %s) GROUP BY status

-- name: usage_host_waits
-- the jobs' waits for a source host's back-off (Job.host_waits); apart from usage, which top reads often
SELECT coalesce(sum((data->>'host_waits')::bigint), 0) FROM tornado_jobs
WHERE (%s::text IS NULL OR owner = %s)

-- name: live_workers
-- other workers holding a live lease (they make requests to sources now): the per-host pacing's share
SELECT count(DISTINCT lease_owner) FROM tornado_jobs
WHERE status = 'Processing' AND lease_expires_at > now() AND lease_owner <> %s

-- name: usage_by_backend
SELECT split_part(data->>'storage_url', ':', 1), sum(stored_bytes)
FROM tornado_jobs WHERE (%s::text IS NULL OR owner = %s) AND stored_bytes > 0 GROUP BY 1

-- name: tenants
SELECT owner, data FROM tornado_tenants WHERE owner = ANY(%s::text[])

-- name: put_tenant
INSERT INTO tornado_tenants (owner, data) VALUES (%s, %s) ON CONFLICT (owner) DO UPDATE SET data = excluded.data

-- name: update_pending
UPDATE tornado_jobs SET data = %s WHERE id = %s AND status = 'Pending'

-- name: update_finished
UPDATE tornado_jobs SET stored_bytes = %s, data = %s WHERE id = %s AND status IN ({terminal})

-- name: cancel_pending
UPDATE tornado_jobs SET status = %s, stored_bytes = %s, reserved_bytes = %s, data = %s
WHERE id = %s AND status = 'Pending'

-- name: flag_cancel
UPDATE tornado_jobs SET cancel_requested = true WHERE id = %s AND status = 'Processing'
RETURNING status, data

-- name: lock_batch
SELECT 1 FROM tornado_batches WHERE id = %s FOR UPDATE

-- name: lock_batches
-- terminal writes take their batches' rows first, in id order
SELECT 1 FROM tornado_batches WHERE id = ANY(%s::text[]) ORDER BY id FOR UPDATE

-- name: ended_batches
SELECT b.id FROM unnest(%s::text[]) AS b(id) WHERE NOT EXISTS (
    SELECT 1 FROM tornado_jobs WHERE batch_id = b.id AND status IN ({open}))

-- name: mark_notified
UPDATE tornado_batches SET notified = true WHERE id = %s AND NOT notified RETURNING owner, data

-- name: status_counts
SELECT status, count(*) FROM tornado_jobs WHERE batch_id = %s GROUP BY status

-- name: insert_outbox
INSERT INTO tornado_outbox (id, owner, job_id, url, event, payload, created_at)
SELECT id, owner, job_id, url, event, payload::json, created_at
FROM json_to_recordset(%s::json)
    AS m(id text, owner text, job_id text, url text, event text, payload text, created_at bigint)
ON CONFLICT (id) DO NOTHING

-- name: claim_outbox
WITH due AS (
    SELECT id FROM tornado_outbox
    WHERE status = 'pending' AND next_attempt_at <= now() AND lease_until <= now()
    ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED)
UPDATE tornado_outbox o SET lease_until = now() + make_interval(secs => %s::float8) FROM due WHERE o.id = due.id
RETURNING o.id, o.owner, o.url, o.event, o.payload, o.job_id, o.attempts, o.created_at

-- name: finish_outbox
UPDATE tornado_outbox SET status = %s, attempts = %s, last_error = %s, lease_until = '-infinity',
    next_attempt_at = now() + make_interval(secs => %s::float8)
WHERE id = %s

-- name: job_data_for_update
SELECT data FROM tornado_jobs WHERE id = %s FOR UPDATE

-- name: set_job_data
UPDATE tornado_jobs SET data = %s WHERE id = %s

-- name: claim
WITH picked AS (
    SELECT id FROM tornado_jobs
    WHERE status = 'Pending' AND NOT paused AND available_at <= now()
    ORDER BY available_at, created_at, seq LIMIT %s
    FOR UPDATE SKIP LOCKED)
UPDATE tornado_jobs j
SET status = 'Processing', lease_owner = %s, lease_token = j.lease_token + 1,
    lease_expires_at = now() + make_interval(secs => %s::float8), heartbeat_at = now(),
    progress = NULL  -- a new attempt starts without progress
FROM picked WHERE j.id = picked.id
RETURNING j.lease_token, j.data::text, j.created_at, j.seq

-- name: claim_listed
-- as claim, among the listed ids only (an engine that runs just the jobs it submitted): parameters are
-- the ids, how many, the worker and the lease's seconds
WITH picked AS (
    SELECT id FROM tornado_jobs
    WHERE id = ANY(%s::text[]) AND status = 'Pending' AND NOT paused AND available_at <= now()
    ORDER BY available_at, created_at, seq LIMIT %s
    FOR UPDATE SKIP LOCKED)
UPDATE tornado_jobs j
SET status = 'Processing', lease_owner = %s, lease_token = j.lease_token + 1,
    lease_expires_at = now() + make_interval(secs => %s::float8)
FROM picked WHERE j.id = picked.id
RETURNING j.lease_token, j.data::text, j.created_at, j.seq

-- name: save_group
-- The saves of a group, in one statement: rows locked in id order (as the heartbeat does), each written
-- only under its own token, and the webhook events of the records that were written queued with them.
-- Rows come as one JSON array each (see pg_sql.recordset); records and payloads as JSON strings.
WITH v AS (
    SELECT * FROM json_to_recordset(%s::json)
        AS v(id text, token bigint, status text, stored bigint, reserved bigint, data text)),
held AS (
    SELECT j.id FROM tornado_jobs j JOIN v ON j.id = v.id AND j.lease_token = v.token
    WHERE j.status = 'Processing' ORDER BY j.id FOR UPDATE OF j),
saved AS (
    UPDATE tornado_jobs j
    SET status = v.status, stored_bytes = v.stored, reserved_bytes = v.reserved, data = v.data::json,
        lease_owner = CASE WHEN v.status = 'Processing' THEN j.lease_owner END
    FROM v JOIN held ON held.id = v.id
    WHERE j.id = v.id AND j.lease_token = v.token AND j.status = 'Processing'
      -- Completed never lands on a job whose cancel was accepted: that cancel would be a lie
      AND (v.status <> 'Completed' OR NOT j.cancel_requested)
    RETURNING j.id),
queued AS (
    INSERT INTO tornado_outbox (id, owner, job_id, url, event, payload, created_at)
    SELECT m.id, m.owner, m.job_id, m.url, m.event, m.payload::json, m.created_at
    FROM json_to_recordset(%s::json) AS m(id text, owner text, job_id text, url text, event text,
                                          payload text, created_at bigint, saved_with text)
    WHERE m.saved_with IN (SELECT id FROM saved)
    ON CONFLICT (id) DO NOTHING)
SELECT id FROM saved

-- name: fence_state
-- why a save of a group was not written: its token, its status, a cancel asked for
SELECT id, lease_token, status, cancel_requested FROM tornado_jobs WHERE id = ANY(%s::text[])

-- name: heartbeat
-- rows locked in id order (as pause_batch_jobs does), so two multi-row lockers cannot deadlock; a job's
-- progress (JSON text, or NULL: unchanged) is written with its lease renewal
WITH held AS (
    SELECT j.id, t.progress FROM tornado_jobs j
    JOIN unnest(%s::text[], %s::bigint[], %s::text[]) AS t(id, token, progress)
        ON j.id = t.id AND j.lease_token = t.token
    WHERE j.lease_owner = %s AND j.status = 'Processing'
    ORDER BY j.id FOR UPDATE OF j)
UPDATE tornado_jobs j SET lease_expires_at = now() + make_interval(secs => %s::float8), heartbeat_at = now(),
    progress = coalesce(held.progress::json, j.progress)
FROM held WHERE j.id = held.id
RETURNING j.id, j.cancel_requested

-- name: release
UPDATE tornado_jobs
SET status = 'Pending', lease_owner = NULL, lease_expires_at = NULL,
    available_at = now() + make_interval(secs => %s::float8), reserved_bytes = %s, data = %s
WHERE id = %s AND lease_token = %s AND status = 'Processing'

-- name: lease_owners
SELECT DISTINCT lease_owner FROM tornado_jobs WHERE status = 'Processing' AND lease_owner IS NOT NULL

-- name: requeue
-- SKIP LOCKED: a row being heartbeated or saved right now is not stale; the next pass looks again
WITH stale AS (
    SELECT id FROM tornado_jobs
    WHERE status = 'Processing'
      AND (lease_expires_at IS NULL OR lease_expires_at < now() OR lease_owner = ANY(%s::text[]))
    ORDER BY id FOR UPDATE SKIP LOCKED)
UPDATE tornado_jobs j SET status = 'Pending', lease_owner = NULL, lease_expires_at = NULL,
    available_at = now()
FROM stale WHERE j.id = stale.id RETURNING j.id

-- name: top_running
SELECT status, data, progress, lease_owner FROM tornado_jobs WHERE status = 'Processing'
ORDER BY created_at, seq LIMIT %s

-- name: top_workers
-- every worker holding a lease: its jobs, its latest lease end and renewal (epoch ms)
SELECT lease_owner, count(*), (extract(epoch FROM max(lease_expires_at)) * 1000)::bigint,
       (extract(epoch FROM max(heartbeat_at)) * 1000)::bigint
FROM tornado_jobs WHERE status = 'Processing' AND lease_owner IS NOT NULL
GROUP BY lease_owner ORDER BY lease_owner

-- name: top_finished
-- jobs ended since the given epoch ms, by status, with the bytes the Completed ones stored
SELECT status, count(*), sum(stored_bytes) FROM tornado_jobs
WHERE status IN ({terminal}) AND (data->>'finished_at')::bigint >= %s GROUP BY status

-- name: top_errors
-- the most recent jobs that ended neither Completed nor Cancelled
SELECT status, data FROM tornado_jobs
WHERE status IN ({terminal}) AND status NOT IN ('Completed', 'Cancelled')
  AND (data->>'finished_at')::bigint IS NOT NULL
ORDER BY (data->>'finished_at')::bigint DESC LIMIT %s

-- name: tenant_sources
SELECT kind, sealed FROM tornado_tenant_sources WHERE owner = %s

-- name: put_tenant_source
INSERT INTO tornado_tenant_sources (owner, kind, sealed) VALUES (%s, %s, %s)
ON CONFLICT (owner, kind) DO UPDATE SET sealed = excluded.sealed

-- name: delete_tenant_source
DELETE FROM tornado_tenant_sources WHERE owner = %s AND kind = %s

-- name: reusable
-- owner, source key, output key, the window's start (epoch ms), how many: Completed jobs whose file was
-- not deleted, newest first, along the index
SELECT status, data FROM tornado_jobs
WHERE owner = %s AND data->>'source_key' = %s AND data->>'output_key' = %s
  AND (data->>'finished_at')::bigint >= %s AND status = 'Completed' AND data->>'file_deleted_at' IS NULL
ORDER BY (data->>'finished_at')::bigint DESC LIMIT %s

-- name: lead_reuse
-- owner, source key, output key, the job: it holds the row unless a running job does; -> the holder
INSERT INTO tornado_reuse_leaders AS held (owner, source_key, output_key, job_id) VALUES (%s, %s, %s, %s)
ON CONFLICT (owner, source_key, output_key) DO UPDATE SET job_id = excluded.job_id
WHERE NOT EXISTS (SELECT 1 FROM tornado_jobs j WHERE j.id = held.job_id AND j.status = 'Processing')

-- name: reuse_leader
SELECT job_id FROM tornado_reuse_leaders WHERE owner = %s AND source_key = %s AND output_key = %s

-- name: end_reuse_lead
DELETE FROM tornado_reuse_leaders WHERE job_id = %s

-- name: notify_jobs
-- in the transaction that makes jobs claimable: delivered at its COMMIT (to listeners: pg_listen.py)
SELECT pg_notify('tornado_jobs', '')
