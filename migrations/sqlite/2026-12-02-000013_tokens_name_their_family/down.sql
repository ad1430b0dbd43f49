DROP INDEX refresh_tokens_prunable;
ALTER TABLE refresh_tokens ADD COLUMN family_in_token BOOLEAN NOT NULL DEFAULT TRUE;
CREATE INDEX refresh_tokens_prunable ON refresh_tokens (rotated_at)
    WHERE rotated_at IS NOT NULL AND family_in_token;
