-- Authorization codes (RFC 6749 §4.1): single use, short-lived, stored as hashes.
CREATE TABLE authorization_codes (
    code_hash    TEXT PRIMARY KEY,      -- SHA-256 of the code
    client_id    TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope        TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    pkce         TEXT NOT NULL,         -- the PKCE challenge and method (S256)
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    family_id    TEXT                   -- the family its exchange started
);

-- What a user has allowed a client, so consent is asked once per scope set.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Browser sessions on Tessera's own pages.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,      -- SHA-256 of the session id in the cookie
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
