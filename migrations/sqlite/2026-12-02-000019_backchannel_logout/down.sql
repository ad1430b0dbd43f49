ALTER TABLE token_families DROP COLUMN end_noticed_at;
DROP TABLE logout_notices;
