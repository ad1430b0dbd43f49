DROP INDEX refresh_tokens_prunable;
ALTER TABLE refresh_tokens DROP COLUMN family_in_token;
