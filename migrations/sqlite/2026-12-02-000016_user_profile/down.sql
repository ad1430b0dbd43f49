ALTER TABLE users DROP COLUMN updated_at;
ALTER TABLE users DROP COLUMN email_verified;
ALTER TABLE users DROP COLUMN email;
ALTER TABLE users DROP COLUMN name;
