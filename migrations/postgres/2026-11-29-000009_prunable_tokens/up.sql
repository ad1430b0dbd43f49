-- Retention prunes rotated refresh tokens of live families: a successor no longer depends on
-- its parent's row (parent_id stays, for the lineage, and may name a pruned token).
ALTER TABLE refresh_tokens DROP CONSTRAINT IF EXISTS refresh_tokens_parent_id_fkey;
-- Whether the token carries its family id. Only such a token's row may be pruned once it is
-- rotated: a replay of it still names its family.
ALTER TABLE refresh_tokens ADD COLUMN family_in_token BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX refresh_tokens_prunable ON refresh_tokens (rotated_at)
    WHERE rotated_at IS NOT NULL AND family_in_token;
