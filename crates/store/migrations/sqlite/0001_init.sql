-- Jobs: one row per scan to do. Times are Unix milliseconds set by the application.
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, even after deletes
    image_ref     TEXT    NOT NULL,
    digest        TEXT,
    event_id      TEXT,
    source        TEXT    NOT NULL,
    policy_digest TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    not_before    INTEGER NOT NULL,
    lease_until   INTEGER,
    worker        TEXT,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX jobs_ready ON jobs (status, not_before, id);
-- At most one queued or running job per (digest, policy bundle): a digest is never scanned twice at once.
CREATE UNIQUE INDEX jobs_active_digest ON jobs (digest, policy_digest)
    WHERE digest IS NOT NULL AND status IN ('queued', 'running');

-- Registry event ids already accepted (a registry retries a delivery it thinks failed).
CREATE TABLE events (
    event_id    TEXT PRIMARY KEY,
    job_id      INTEGER REFERENCES jobs (id),
    received_at INTEGER NOT NULL
);

-- Verdict and report per (manifest digest, policy bundle).
CREATE TABLE results (
    manifest_digest TEXT    NOT NULL,
    policy_digest   TEXT    NOT NULL,
    verdict_json    TEXT    NOT NULL,
    report_json     TEXT    NOT NULL,
    decision        TEXT    NOT NULL,
    repository      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (manifest_digest, policy_digest)
);
CREATE INDEX results_repository ON results (repository);

-- The SBOM depends on the image only, not on the policy bundle.
CREATE TABLE sboms (
    manifest_digest TEXT PRIMARY KEY,
    sbom_json       TEXT    NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- Every tag a digest was seen under; rows accumulate.
CREATE TABLE image_tags (
    repository      TEXT    NOT NULL,
    tag             TEXT    NOT NULL,
    manifest_digest TEXT    NOT NULL,
    first_seen      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    PRIMARY KEY (repository, tag, manifest_digest)
);
CREATE INDEX image_tags_digest ON image_tags (manifest_digest);
