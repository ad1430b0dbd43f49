DROP INDEX refresh_tokens_prunable;
ALTER TABLE refresh_tokens DROP COLUMN family_in_token;
ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_parent_id_fkey
    FOREIGN KEY (parent_id) REFERENCES refresh_tokens (id) ON DELETE CASCADE;
