-- Passkeys (WebAuthn): one row per credential, the credential as webauthn-rs stores it
-- (public key, sign counter, backup flags: no secret). The credential id is unique across
-- users, so a discoverable sign-in finds its user from the credential alone.
CREATE TABLE passkeys (
    credential_id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_user_id ON passkeys (user_id);
-- A WebAuthn ceremony under way: its state, taken (deleted) by the answer, so a challenge is
-- answered once, on any instance. Retention deletes the rows past `expires_at`.
CREATE TABLE webauthn_challenges (
    id TEXT PRIMARY KEY NOT NULL,
    -- The user a registration or second step is for; NULL for a passkey sign-in.
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_challenges_expires_at ON webauthn_challenges (expires_at);
-- How the user signed in (RFC 8176 `amr` values, space-separated): on the session, on the code
-- it issues and on the family that code starts. NULL on rows from before: a password.
ALTER TABLE sessions ADD COLUMN amr TEXT;
ALTER TABLE authorization_codes ADD COLUMN amr TEXT;
ALTER TABLE token_families ADD COLUMN amr TEXT;
-- A client whose users must sign in with a second factor (an admin console, say).
ALTER TABLE clients ADD COLUMN require_second_factor BOOLEAN NOT NULL DEFAULT FALSE;
