-- 0001: jobs, batches and tenants (the SQLite store's tables, with PostgreSQL types).
-- Times the database compares (available_at, lease_expires_at) are timestamptz from the database
-- clock; created_at is the job's own epoch-millisecond stamp, kept for ordering and the API.

CREATE TABLE tornado_jobs (
    id               text PRIMARY KEY,
    seq              bigint GENERATED ALWAYS AS IDENTITY,
    owner            text NOT NULL DEFAULT '',
    status           text NOT NULL,
    created_at       bigint NOT NULL,
    available_at     timestamptz NOT NULL DEFAULT now(),
    idempotency_key  text,
    lease_owner      text,
    lease_token      bigint NOT NULL DEFAULT 0,
    lease_expires_at timestamptz,
    batch_id         text,
    paused           boolean NOT NULL DEFAULT false,
    cancel_requested boolean NOT NULL DEFAULT false,
    stored_bytes     bigint NOT NULL DEFAULT 0,
    reserved_bytes   bigint NOT NULL DEFAULT 0,
    data             json NOT NULL
);
-- The claim query reads only runnable rows, in this order.
CREATE INDEX tornado_jobs_claim ON tornado_jobs (available_at, created_at, seq)
    WHERE status = 'Pending' AND NOT paused;
CREATE INDEX tornado_jobs_leases ON tornado_jobs (lease_expires_at) WHERE status = 'Processing';
CREATE INDEX tornado_jobs_batch ON tornado_jobs (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX tornado_jobs_owner_created ON tornado_jobs (owner, created_at DESC, seq DESC);
CREATE UNIQUE INDEX tornado_jobs_idempotency ON tornado_jobs (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE tornado_batches (
    id         text PRIMARY KEY,
    owner      text NOT NULL DEFAULT '',
    created_at bigint NOT NULL,
    paused     boolean NOT NULL DEFAULT false,
    data       json NOT NULL
);

CREATE TABLE tornado_tenants (
    owner text PRIMARY KEY,
    data  json NOT NULL
);
