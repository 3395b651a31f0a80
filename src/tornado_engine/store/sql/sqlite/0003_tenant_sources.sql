-- 0003: each tenant's sources (issue 16): its cookie jar and its upstream proxy pool, one row per kind,
-- sealed (encrypted) by the engine. Apart from the tenants table: a job start reads its tenant's quota
-- and storage without the jar, which can be large.
CREATE TABLE IF NOT EXISTS tenant_sources (
    owner  TEXT NOT NULL,
    kind   TEXT NOT NULL,
    sealed TEXT NOT NULL,
    PRIMARY KEY (owner, kind)
);
