-- 0004: each tenant's sources (issue 16): its cookie jar and its upstream proxy pool, one row per kind,
-- sealed (encrypted) by the engine. Apart from tornado_tenants: a job start reads its tenant's quota
-- and storage without the jar, which can be large.
CREATE TABLE tornado_tenant_sources (
    owner  text NOT NULL,
    kind   text NOT NULL,
    sealed text NOT NULL,
    PRIMARY KEY (owner, kind)
);
