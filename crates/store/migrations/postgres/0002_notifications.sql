-- Outgoing notifications (webhooks to chat, ticketing, …), delivered at least once: a row is
-- written in the same breath as the verdict it announces, and a sender leases it like a job.
-- Times are Unix milliseconds set by the application.
CREATE TABLE notifications (
    id           BIGSERIAL PRIMARY KEY,
    payload_json TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('queued', 'delivering', 'delivered', 'failed')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    not_before   BIGINT NOT NULL,
    lease_until  BIGINT,
    worker       TEXT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX notifications_ready ON notifications (status, not_before, id);

-- The newest job for a (digest, policy bundle), whatever its status: jobs_active_digest only
-- covers queued and running ones.
CREATE INDEX jobs_digest ON jobs (digest, policy_digest, id);
