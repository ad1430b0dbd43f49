-- Browser apps: the web origins whose scripts may read the client's token, revocation and
-- userinfo responses (CORS; space-separated, exact), and a cap on the absolute lifetime of its
-- refresh-token families (milliseconds; NULL: the server's tokens.refresh_absolute_ttl).
ALTER TABLE clients ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN refresh_absolute_ttl_ms BIGINT;
