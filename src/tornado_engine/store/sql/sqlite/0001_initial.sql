-- The schema of the releases before SQLite migrations (PRAGMA user_version 0), which made it with
-- CREATE ... IF NOT EXISTS: applied to one of their databases, this migration finds everything in place.
CREATE TABLE IF NOT EXISTS jobs (
    id               TEXT PRIMARY KEY,
    owner            TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    available_at     INTEGER NOT NULL,
    idempotency_key  TEXT,
    lease_owner      TEXT,
    lease_token      INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER,
    batch_id         TEXT,
    paused           INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    stored_bytes     INTEGER NOT NULL DEFAULT 0,
    reserved_bytes   INTEGER NOT NULL DEFAULT 0,
    data             TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (status, paused, available_at, created_at);
CREATE INDEX IF NOT EXISTS jobs_batch ON jobs (batch_id);
CREATE TABLE IF NOT EXISTS batches (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    paused     INTEGER NOT NULL DEFAULT 0,
    notified   INTEGER NOT NULL DEFAULT 0,
    data       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id              TEXT PRIMARY KEY,
    owner           TEXT NOT NULL DEFAULT '',
    job_id          TEXT,
    url             TEXT NOT NULL,
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS tenants (
    owner TEXT PRIMARY KEY,
    data  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (owner, created_at DESC);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency
    ON jobs (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
