DROP TABLE login_failures;
ALTER TABLE signing_keys DROP COLUMN activates_at;
