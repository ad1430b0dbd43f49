-- On PostgreSQL this drops the unique index on refresh_tokens.token_hash, which lookups no
-- longer use. SQLite cannot drop a column's UNIQUE without rebuilding the table, and its
-- writes are cheap enough: nothing to do. Kept so that both backends have the same migrations.
SELECT 1;
