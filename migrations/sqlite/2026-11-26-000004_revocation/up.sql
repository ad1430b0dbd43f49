-- Access tokens revoked before their expiry (RFC 7009), by jti; kept until they expire.
CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);

-- Resource servers that may introspect (RFC 7662) tokens issued to other clients.
ALTER TABLE clients ADD COLUMN allow_introspection BOOLEAN NOT NULL DEFAULT FALSE;

-- Whether the authorization request named its redirect_uri: only then must the token request
-- repeat it (RFC 6749 §4.1.3).
ALTER TABLE authorization_codes ADD COLUMN redirect_uri_given BOOLEAN NOT NULL DEFAULT TRUE;
