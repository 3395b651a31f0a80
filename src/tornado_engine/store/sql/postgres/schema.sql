-- The whole schema, for a fresh database: what 0001_initial.sql and every later migration add up to.
-- A test checks that both routes give the same tables, columns, indexes and constraints; change this
-- file together with a new migration.

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
    data             json NOT NULL,
    progress         json,
    heartbeat_at     timestamptz
);
-- The claim query reads only runnable rows, in this order.
CREATE INDEX tornado_jobs_claim ON tornado_jobs (available_at, created_at, seq)
    WHERE status = 'Pending' AND NOT paused;
CREATE INDEX tornado_jobs_leases ON tornado_jobs (lease_expires_at) WHERE status = 'Processing';
CREATE INDEX tornado_jobs_batch_status ON tornado_jobs (batch_id, status) WHERE batch_id IS NOT NULL;
CREATE INDEX tornado_jobs_owner_created ON tornado_jobs (owner, created_at DESC, seq DESC);
CREATE UNIQUE INDEX tornado_jobs_idempotency ON tornado_jobs (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- When jobs ended: the last minute's throughput and the most recent errors (top).
CREATE INDEX tornado_jobs_finished ON tornado_jobs (((data->>'finished_at')::bigint))
    WHERE status IN ('Cancelled', 'Completed', 'Failed', 'Skipped', 'Warning');
-- Reuse: a Completed job of the owner with the same source and output options, newest first.
CREATE INDEX tornado_jobs_reuse ON tornado_jobs
    (owner, (data->>'source_key'), (data->>'output_key'), ((data->>'finished_at')::bigint))
    WHERE status = 'Completed';

CREATE TABLE tornado_batches (
    id         text PRIMARY KEY,
    owner      text NOT NULL DEFAULT '',
    created_at bigint NOT NULL,
    paused     boolean NOT NULL DEFAULT false,
    data       json NOT NULL,
    notified   boolean NOT NULL DEFAULT false
);

CREATE TABLE tornado_tenants (
    owner text PRIMARY KEY,
    data  json NOT NULL
);

-- Webhook events, written in the same transaction as a job's terminal status.
CREATE TABLE tornado_outbox (
    id              text PRIMARY KEY,
    owner           text NOT NULL DEFAULT '',
    job_id          text,
    url             text NOT NULL,
    event           text NOT NULL,
    payload         json NOT NULL,
    status          text NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz NOT NULL DEFAULT '-infinity',
    last_error      text,
    created_at      bigint NOT NULL
);
CREATE INDEX tornado_outbox_due ON tornado_outbox (next_attempt_at) WHERE status = 'pending';

-- Reuse: the job downloading each file now, which identical jobs wait for (0005_reuse.sql).
CREATE TABLE tornado_reuse_leaders (
    owner      text NOT NULL,
    source_key text NOT NULL,
    output_key text NOT NULL,
    job_id     text NOT NULL,
    PRIMARY KEY (owner, source_key, output_key)
);
CREATE INDEX tornado_reuse_leaders_job ON tornado_reuse_leaders (job_id);

CREATE TABLE tornado_tenant_sources (
    owner  text NOT NULL,
    kind   text NOT NULL,
    sealed text NOT NULL,
    PRIMARY KEY (owner, kind)
);
