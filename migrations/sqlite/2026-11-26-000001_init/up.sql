-- Times are Unix milliseconds.
CREATE TABLE clients (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    secret_hash   TEXT,                 -- NULL for public clients
    redirect_uris TEXT NOT NULL DEFAULT '',  -- space-separated
    grant_types   TEXT NOT NULL,        -- space-separated
    scopes        TEXT NOT NULL,        -- space-separated: what the client may ask for
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,        -- Argon2id PHC string
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

CREATE TABLE token_families (
    id             TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope          TEXT NOT NULL,
    auth_method    TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,     -- absolute lifetime
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX token_families_user ON token_families (user_id);
CREATE INDEX token_families_client ON token_families (client_id);

CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    parent_id   TEXT UNIQUE REFERENCES refresh_tokens (id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,   -- SHA-256 of the token; the token itself is never stored
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,        -- idle lifetime, capped by the family's
    rotated_at  BIGINT,
    replaced_by TEXT,
    client_ip   TEXT,
    user_agent  TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
-- A family has at most one active (unrotated) refresh token, whatever the application does.
CREATE UNIQUE INDEX refresh_tokens_one_active ON refresh_tokens (family_id) WHERE rotated_at IS NULL;

CREATE TABLE reuse_incidents (
    id                TEXT PRIMARY KEY,
    family_id         TEXT NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    replayed_token_id TEXT NOT NULL,
    active_token_id   TEXT,
    client_id         TEXT NOT NULL,
    client_ip         TEXT,
    user_agent        TEXT,
    occurred_at       BIGINT NOT NULL
);
CREATE INDEX reuse_incidents_family ON reuse_incidents (family_id);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_key TEXT NOT NULL,          -- AEAD-sealed under the master key
    public_jwk  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
