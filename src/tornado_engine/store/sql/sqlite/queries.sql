-- The SQLite store's queries, by name (see store/sqlfiles.py). Parameters are ``?``; ``{terminal}`` is
-- the list of terminal statuses. Times are milliseconds since the epoch, passed in by the store.

-- name: job_by_key
SELECT status, data FROM jobs WHERE owner = ? AND idempotency_key = ?

-- name: insert_batch
INSERT INTO batches (id, owner, created_at, paused, data) VALUES (?, ?, ?, ?, ?)

-- name: insert_job
INSERT INTO jobs (id, owner, status, stored_bytes, reserved_bytes, data, created_at, available_at,
                  batch_id, paused)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: set_idempotency_key
UPDATE jobs SET idempotency_key = ? WHERE id = ?

-- name: get_job
SELECT status, data, progress FROM jobs WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)

-- name: list_jobs
SELECT status, data, progress FROM jobs WHERE (?1 IS NULL OR owner = ?1) AND (?2 IS NULL OR status = ?2)
ORDER BY created_at DESC, rowid DESC LIMIT ?3 OFFSET ?4

-- name: get_batch
SELECT owner, created_at, paused, data FROM batches WHERE id = ?1 AND (?2 IS NULL OR owner = ?2)

-- name: batch_status_counts
SELECT status, COUNT(*) FROM jobs WHERE batch_id = ? GROUP BY status

-- name: pause_batch
UPDATE batches SET paused = ? WHERE id = ?

-- name: pause_batch_jobs
UPDATE jobs SET paused = ? WHERE batch_id = ?

-- name: usage
SELECT status, COUNT(*), SUM(stored_bytes), SUM(reserved_bytes) FROM jobs
WHERE (?1 IS NULL OR owner = ?1) GROUP BY status

-- name: usage_host_waits
-- the jobs' waits for a source host's back-off (Job.host_waits); apart from usage, which top reads often
SELECT SUM(json_extract(data, '$.host_waits')) FROM jobs WHERE (?1 IS NULL OR owner = ?1)

-- name: live_workers
-- other workers holding a live lease (they make requests to sources now): the per-host pacing's share
SELECT COUNT(DISTINCT lease_owner) FROM jobs
WHERE status = 'Processing' AND lease_expires_at > ?1 AND lease_owner <> ?2

-- name: usage_by_backend
SELECT substr(url, 1, instr(url, ':') - 1), SUM(stored_bytes)
FROM (SELECT stored_bytes, json_extract(data, '$.storage_url') AS url FROM jobs
      WHERE (?1 IS NULL OR owner = ?1) AND stored_bytes > 0)
GROUP BY 1

-- name: get_tenant
SELECT data FROM tenants WHERE owner = ?

-- name: put_tenant
INSERT INTO tenants (owner, data) VALUES (?, ?) ON CONFLICT (owner) DO UPDATE SET data = excluded.data

-- name: update_pending
UPDATE jobs SET data = ? WHERE id = ? AND status = 'Pending'

-- name: update_finished
UPDATE jobs SET stored_bytes = ?, data = ? WHERE id = ? AND status IN ({terminal})

-- name: cancel_pending
UPDATE jobs SET status = ?, stored_bytes = ?, reserved_bytes = ?, data = ? WHERE id = ?

-- name: flag_cancel
UPDATE jobs SET cancel_requested = 1 WHERE id = ?

-- name: insert_outbox
INSERT OR IGNORE INTO outbox (id, owner, job_id, url, event, payload, created_at, next_attempt_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)

-- name: batch_open
SELECT EXISTS (SELECT 1 FROM jobs WHERE batch_id = ? AND status IN ({open}))

-- name: mark_batch_notified
UPDATE batches SET notified = 1 WHERE id = ? AND notified = 0 RETURNING owner, data

-- name: claim_outbox
-- ?1 now, ?2 the lease's end, ?3 how many
UPDATE outbox SET lease_until = ?2 WHERE id IN (
    SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1 AND lease_until <= ?1
    ORDER BY next_attempt_at LIMIT ?3)
RETURNING id, owner, url, event, payload, job_id, attempts, created_at

-- name: finish_outbox
UPDATE outbox SET status = ?, attempts = ?, last_error = ?, lease_until = 0, next_attempt_at = ?
WHERE id = ?

-- name: note_delivery
-- the delivery's fields (a JSON object) merged into the job's record
UPDATE jobs SET data = json_patch(data, ?) WHERE id = ?

-- name: claim
-- ?1 the worker, ?2 the lease's end, ?3 now, ?4 how many. A new attempt starts without progress.
UPDATE jobs SET status = 'Processing', lease_owner = ?1, lease_token = lease_token + 1, lease_expires_at = ?2,
    heartbeat_at = ?3, progress = NULL
WHERE id IN (SELECT id FROM jobs WHERE status = 'Pending' AND paused = 0 AND available_at <= ?3
             ORDER BY available_at, created_at LIMIT ?4)
RETURNING lease_token, data

-- name: claim_listed
-- as claim, among the ids of ?5 (a JSON array) only: an engine that runs just the jobs it submitted
UPDATE jobs SET status = 'Processing', lease_owner = ?1, lease_token = lease_token + 1, lease_expires_at = ?2
WHERE id IN (SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(?5)) AND status = 'Pending'
             AND paused = 0 AND available_at <= ?3 ORDER BY available_at, created_at LIMIT ?4)
RETURNING lease_token, data

-- name: save
-- ?1 status, ?5 id, ?6 token. Completed never lands on a job whose cancel was accepted: that cancel
-- would be a lie.
UPDATE jobs SET status = ?1, stored_bytes = ?2, reserved_bytes = ?3, data = ?4,
    lease_owner = CASE WHEN ?1 = 'Processing' THEN lease_owner END
WHERE id = ?5 AND lease_token = ?6 AND status = 'Processing' AND (?1 != 'Completed' OR cancel_requested = 0)

-- name: save_step
-- a write of a job that stays Processing (a step, a checkpoint, the reservation): ?3 id, ?4 token. Its
-- status, stored bytes and owner do not change: not set, so the indexes on status are left alone.
UPDATE jobs SET reserved_bytes = ?1, data = ?2 WHERE id = ?3 AND lease_token = ?4 AND status = 'Processing'

-- name: cancel_requested
SELECT cancel_requested FROM jobs WHERE id = ? AND lease_token = ? AND status = 'Processing'

-- name: heartbeat
-- one statement for all of a worker's leases: {job id: token} as a JSON object; the unary + keeps the
-- planner on the primary key (one lookup per lease), not on the status index
UPDATE jobs SET lease_expires_at = ?, heartbeat_at = ? FROM json_each(?) AS held
WHERE jobs.id = held.key AND jobs.lease_token = held.value AND jobs.lease_owner = ?
  AND +jobs.status = 'Processing'
RETURNING jobs.id, jobs.cancel_requested

-- name: save_progress
-- in the heartbeat's transaction, for the leases it just renewed: {job id: progress object}
UPDATE jobs SET progress = held.value FROM json_each(?) AS held
WHERE jobs.id = held.key AND jobs.lease_owner = ? AND +jobs.status = 'Processing'

-- name: release
UPDATE jobs SET status = 'Pending', lease_owner = NULL, lease_expires_at = NULL, available_at = ?,
    reserved_bytes = ?, data = ?
WHERE id = ? AND lease_token = ? AND status = 'Processing'

-- name: leases
SELECT id, lease_owner, lease_expires_at FROM jobs WHERE status = 'Processing'

-- name: requeue
UPDATE jobs SET status = 'Pending', lease_owner = NULL, lease_expires_at = NULL, available_at = ?
WHERE id = ? AND status = 'Processing'

-- name: top_running
SELECT status, data, progress, lease_owner FROM jobs WHERE status = 'Processing'
ORDER BY created_at LIMIT ?

-- name: top_workers
-- every worker holding a lease: its jobs, its latest lease end and renewal (epoch ms)
SELECT lease_owner, COUNT(*), MAX(lease_expires_at), MAX(heartbeat_at) FROM jobs
WHERE status = 'Processing' AND lease_owner IS NOT NULL GROUP BY lease_owner ORDER BY lease_owner

-- name: top_finished
-- jobs ended since ?1 (epoch ms), by status, with the bytes the Completed ones stored. INDEXED BY: without
-- statistics the planner takes the status index and reads every job that ever ended
SELECT status, COUNT(*), SUM(stored_bytes) FROM jobs INDEXED BY jobs_finished
WHERE status IN ({terminal}) AND json_extract(data, '$.finished_at') >= ?1 GROUP BY status

-- name: top_errors
-- the most recent jobs that ended neither Completed nor Cancelled (newest first, along the index)
SELECT status, data FROM jobs INDEXED BY jobs_finished
WHERE status IN ({terminal}) AND status NOT IN ('Completed', 'Cancelled')
  AND json_extract(data, '$.finished_at') IS NOT NULL
ORDER BY json_extract(data, '$.finished_at') DESC LIMIT ?

-- name: tenant_sources
SELECT kind, sealed FROM tenant_sources WHERE owner = ?

-- name: put_tenant_source
INSERT INTO tenant_sources (owner, kind, sealed) VALUES (?, ?, ?)
ON CONFLICT (owner, kind) DO UPDATE SET sealed = excluded.sealed

-- name: delete_tenant_source
DELETE FROM tenant_sources WHERE owner = ? AND kind = ?

-- name: reusable
-- ?1 owner, ?2 source key, ?3 output key, ?4 the window's start (epoch ms), ?5 how many: Completed jobs
-- whose file was not deleted, newest first, along the index
SELECT status, data FROM jobs INDEXED BY jobs_reuse
WHERE owner = ?1 AND json_extract(data, '$.source_key') = ?2 AND json_extract(data, '$.output_key') = ?3
  AND json_extract(data, '$.finished_at') >= ?4 AND status = 'Completed'
  AND json_extract(data, '$.file_deleted_at') IS NULL
ORDER BY json_extract(data, '$.finished_at') DESC LIMIT ?5

-- name: lead_reuse
-- ?1 owner, ?2 source key, ?3 output key, ?4 the job: it holds the row unless a running job does
INSERT INTO reuse_leaders (owner, source_key, output_key, job_id) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (owner, source_key, output_key) DO UPDATE SET job_id = excluded.job_id
WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = reuse_leaders.job_id AND jobs.status = 'Processing')

-- name: reuse_leader
SELECT job_id FROM reuse_leaders WHERE owner = ? AND source_key = ? AND output_key = ?

-- name: end_reuse_lead
DELETE FROM reuse_leaders WHERE job_id = ?
