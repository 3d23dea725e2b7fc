-- Facts apart from verdicts. What a scan finds depends on the image bytes only; what a policy
-- bundle concludes also depends on the name the image was asked for (rules and exceptions match
-- repository and tag), on who asks (input.context.mode) and on time (exceptions expire). So the
-- facts are stored once per manifest digest and verdicts per (digest, bundle, reference, mode),
-- each with the time until which it holds. Times are Unix milliseconds set by the application.

-- The policy input document of a scanned image (without context, findings or verdict).
CREATE TABLE reports (
    manifest_digest TEXT    PRIMARY KEY,
    report_json     TEXT    NOT NULL,
    -- The repository the image was first scanned under, for listing.
    repository      TEXT    NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX reports_repository ON reports (repository);

-- Who may see a report, and the verdicts and SBOM of its digest: '' is everyone (pulled
-- anonymously or with Gantry's own credentials); 'namespace:NS' are callers of Kubernetes
-- namespace NS (pulled with one of its pods' imagePullSecrets). A digest can have several.
CREATE TABLE report_scopes (
    manifest_digest TEXT NOT NULL REFERENCES reports (manifest_digest) ON DELETE CASCADE,
    scope           TEXT NOT NULL,
    PRIMARY KEY (manifest_digest, scope)
);

-- What a bundle concluded about an image named `reference` (repository[:tag], no digest) for
-- a kind of caller (`mode`: webhook, api, admission). `valid_until`: the earliest time the
-- verdict may change without the image or the bundle changing (an exception expires, or the
-- longest a verdict is trusted); NULL for never.
CREATE TABLE verdicts (
    manifest_digest TEXT    NOT NULL REFERENCES reports (manifest_digest) ON DELETE CASCADE,
    policy_digest   TEXT    NOT NULL,
    reference       TEXT    NOT NULL,
    mode            TEXT    NOT NULL,
    verdict_json    TEXT    NOT NULL,
    decision        TEXT    NOT NULL,
    valid_until     BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (manifest_digest, policy_digest, reference, mode)
);
CREATE INDEX verdicts_policy ON verdicts (policy_digest, manifest_digest);
CREATE INDEX verdicts_updated ON verdicts (updated_at);
CREATE INDEX verdicts_valid_until ON verdicts (valid_until) WHERE valid_until IS NOT NULL;

INSERT INTO reports (manifest_digest, report_json, repository, created_at, updated_at)
SELECT r.manifest_digest, r.report_json, r.repository, r.created_at, r.updated_at FROM results r
WHERE NOT EXISTS (SELECT 1 FROM results n WHERE n.manifest_digest = r.manifest_digest
    AND (n.updated_at > r.updated_at OR (n.updated_at = r.updated_at AND n.policy_digest > r.policy_digest)));
INSERT INTO report_scopes (manifest_digest, scope) SELECT manifest_digest, '' FROM reports;
INSERT INTO verdicts (manifest_digest, policy_digest, reference, mode, verdict_json, decision,
    valid_until, created_at, updated_at)
SELECT manifest_digest, policy_digest, repository, 'webhook', verdict_json, decision, NULL,
    created_at, updated_at FROM results;
DROP TABLE results;

-- A job pulls for a scope: '' with Gantry's own credentials, 'namespace:NS' with the pull
-- secrets named in pull_secrets (a JSON array of Secret names in NS, read by the worker: the
-- credentials themselves are never stored). One active job per (digest, bundle, scope).
ALTER TABLE jobs ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN pull_secrets TEXT;
DROP INDEX jobs_active_digest;
CREATE UNIQUE INDEX jobs_active_digest ON jobs (digest, policy_digest, scope)
    WHERE digest IS NOT NULL AND status IN ('queued', 'running');
