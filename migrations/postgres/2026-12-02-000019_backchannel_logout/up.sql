-- Back-channel logout (OpenID Connect Back-Channel Logout 1.0): an outbox. A row is written in
-- the transaction that ends a family (or notices that one reached its absolute lifetime), for
-- each client with a back-channel logout URI, and a worker delivers it: one instance at a
-- time (claimed_until), retried with backoff until delivered_at or failed_at.
CREATE TABLE logout_notices (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    sid TEXT,
    family_id TEXT,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT,
    delivered_at BIGINT,
    failed_at BIGINT,
    last_error TEXT
);
CREATE INDEX logout_notices_due ON logout_notices (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX logout_notices_family ON logout_notices (family_id);
CREATE INDEX logout_notices_done ON logout_notices (created_at);
-- When the end of a family at its absolute lifetime was noticed (and its apps told).
ALTER TABLE token_families ADD COLUMN end_noticed_at BIGINT;
