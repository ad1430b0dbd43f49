-- Refresh tokens are found by the id inside them (its MAC proves it is ours), then checked
-- against token_hash: an index on the hash only cost every rotation two more index entries.
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_token_hash_key;
