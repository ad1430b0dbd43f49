-- OpenID Connect: what an ID token says about the sign-in behind a grant. A code carries the
-- authorization request's nonce, when the user signed in (auth_time) and the browser session
-- (sid, its public id); the family it starts keeps auth_time and sid, so that the ID token of a
-- refresh says the same, and so that a logout can find the families of a session. NULL
-- auth_time on a family: its created_at.
ALTER TABLE authorization_codes ADD COLUMN nonce TEXT;
ALTER TABLE authorization_codes ADD COLUMN auth_time BIGINT;
ALTER TABLE authorization_codes ADD COLUMN sid TEXT;
ALTER TABLE token_families ADD COLUMN auth_time BIGINT;
ALTER TABLE token_families ADD COLUMN sid TEXT;
CREATE INDEX token_families_sid ON token_families (sid) WHERE sid IS NOT NULL;
