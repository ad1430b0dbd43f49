-- What a user shows apps about themselves (OpenID Connect standard claims): a full name, an
-- email address and whether it was verified, and when any of it last changed (NULL: never
-- since the user was created).
ALTER TABLE users ADD COLUMN name TEXT;
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN updated_at BIGINT;
