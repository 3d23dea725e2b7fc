-- Jobs: one row per scan to do. Times are Unix milliseconds set by the application.
CREATE TABLE jobs (
    id            BIGSERIAL PRIMARY KEY,
    image_ref     TEXT    NOT NULL,
    digest        TEXT,
    event_id      TEXT,
    source        TEXT    NOT NULL,
    policy_digest TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    not_before    BIGINT NOT NULL,
    lease_until   BIGINT,
    worker        TEXT,
    last_error    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX jobs_ready ON jobs (status, not_before, id);
-- At most one queued or running job per (digest, policy bundle): a digest is never scanned twice at once.
CREATE UNIQUE INDEX jobs_active_digest ON jobs (digest, policy_digest)
    WHERE digest IS NOT NULL AND status IN ('queued', 'running');

-- Registry event ids already accepted (a registry retries a delivery it thinks failed).
CREATE TABLE events (
    event_id    TEXT PRIMARY KEY,
    job_id      BIGINT REFERENCES jobs (id),
    received_at BIGINT NOT NULL
);

-- Verdict and report per (manifest digest, policy bundle).
CREATE TABLE results (
    manifest_digest TEXT    NOT NULL,
    policy_digest   TEXT    NOT NULL,
    verdict_json    TEXT    NOT NULL,
    report_json     TEXT    NOT NULL,
    decision        TEXT    NOT NULL,
    repository      TEXT    NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (manifest_digest, policy_digest)
);
CREATE INDEX results_repository ON results (repository);

-- The SBOM depends on the image only, not on the policy bundle.
CREATE TABLE sboms (
    manifest_digest TEXT PRIMARY KEY,
    sbom_json       TEXT    NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Every tag a digest was seen under; rows accumulate.
CREATE TABLE image_tags (
    repository      TEXT    NOT NULL,
    tag             TEXT    NOT NULL,
    manifest_digest TEXT    NOT NULL,
    first_seen      BIGINT NOT NULL,
    last_seen       BIGINT NOT NULL,
    PRIMARY KEY (repository, tag, manifest_digest)
);
CREATE INDEX image_tags_digest ON image_tags (manifest_digest);
