-- Every refresh token names its family (the format without it never shipped): any rotated
-- token's row may be pruned, and the flag that told them apart goes.
DROP INDEX refresh_tokens_prunable;
ALTER TABLE refresh_tokens DROP COLUMN family_in_token;
CREATE INDEX refresh_tokens_prunable ON refresh_tokens (rotated_at) WHERE rotated_at IS NOT NULL;
