-- RFC 8707 resource indicators. A resource server is registered by its URI with the scopes it
-- accepts; an access token requested for it carries it as `aud`. A family and a code keep the
-- resources they were granted for (space-separated URIs; NULL: none, `aud` is the issuer).
CREATE TABLE resources (
    uri        TEXT PRIMARY KEY,
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
ALTER TABLE token_families ADD COLUMN resources TEXT;
ALTER TABLE authorization_codes ADD COLUMN resources TEXT;
