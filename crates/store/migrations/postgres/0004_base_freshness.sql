-- Base freshness: whether the tag an image's base was built from still points at the base
-- digest the image records. Times are Unix milliseconds set by the application.

-- The base the image records (facts.base): repository:tag and the digest resolved at build
-- time; NULL when either is not recorded (nothing to compare). base_outdated_since: when Gantry
-- first saw the tag point elsewhere; NULL while it has not.
ALTER TABLE reports ADD COLUMN base_reference TEXT;
ALTER TABLE reports ADD COLUMN base_digest TEXT;
ALTER TABLE reports ADD COLUMN base_outdated_since BIGINT;
CREATE INDEX reports_base ON reports (base_reference) WHERE base_reference IS NOT NULL;

-- Every digest a base tag was seen pointing at (for an index, the index and each of its
-- manifests), from the first to the last check that saw it.
CREATE TABLE base_tags (
    reference  TEXT    NOT NULL,
    digest     TEXT    NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    PRIMARY KEY (reference, digest)
);

-- The last check of each base tag: what it pointed at (the root digest), or why it could not
-- be told.
CREATE TABLE base_checks (
    reference      TEXT    PRIMARY KEY,
    checked_at     BIGINT NOT NULL,
    current_digest TEXT,
    error          TEXT
);
