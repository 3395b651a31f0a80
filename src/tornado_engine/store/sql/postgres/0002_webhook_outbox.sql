-- 0002: the webhook outbox, written in the same transaction as a job's terminal status.

ALTER TABLE tornado_batches ADD COLUMN notified boolean NOT NULL DEFAULT false;

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
