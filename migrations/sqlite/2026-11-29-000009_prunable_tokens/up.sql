-- Retention prunes rotated refresh tokens of live families: a successor no longer depends on
-- its parent's row (parent_id stays, for the lineage, and may name a pruned token). SQLite
-- drops a foreign key only by rebuilding the table.
CREATE TABLE refresh_tokens_new (
    id              TEXT PRIMARY KEY,
    family_id       TEXT NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    parent_id       TEXT UNIQUE,
    token_hash      TEXT NOT NULL UNIQUE,   -- SHA-256 of the token; the token itself is never stored
    issued_at       BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,        -- idle lifetime, capped by the family's
    rotated_at      BIGINT,
    replaced_by     TEXT,
    client_ip       TEXT,
    user_agent      TEXT,
    -- Whether the token carries its family id. Only such a token's row may be pruned once it
    -- is rotated: a replay of it still names its family.
    family_in_token BOOLEAN NOT NULL DEFAULT FALSE
);
INSERT INTO refresh_tokens_new (id, family_id, parent_id, token_hash, issued_at, expires_at,
                                rotated_at, replaced_by, client_ip, user_agent)
    SELECT id, family_id, parent_id, token_hash, issued_at, expires_at, rotated_at, replaced_by,
           client_ip, user_agent
    FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_new RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE UNIQUE INDEX refresh_tokens_one_active ON refresh_tokens (family_id) WHERE rotated_at IS NULL;
CREATE INDEX refresh_tokens_prunable ON refresh_tokens (rotated_at)
    WHERE rotated_at IS NOT NULL AND family_in_token;
