-- Retention finds dead families by these: revoked, or past their absolute lifetime.
CREATE INDEX token_families_revoked ON token_families (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX token_families_expires ON token_families (expires_at);
