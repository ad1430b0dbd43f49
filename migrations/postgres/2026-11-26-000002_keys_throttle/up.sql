-- A key is published from created_at and signs from activates_at, so that relying parties that
-- cache the JWKS have fetched it before the first token it signs reaches them.
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT NOT NULL DEFAULT 0;
UPDATE signing_keys SET activates_at = created_at;

-- Failed password attempts, per key ("user:<name>" or "ip:<address>"), shared by all instances.
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);
