-- Second factors. An authenticator app (TOTP, RFC 6238): its secret sealed under the master
-- key (bound to the user), enrolment confirmed only by a correct code, and the last step
-- accepted, so that each code is accepted once on any instance. One row per user.
CREATE TABLE user_totp (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- NULL until a code from the app confirms the enrolment.
    confirmed_at BIGINT,
    last_step BIGINT NOT NULL DEFAULT 0,
    last_used_at BIGINT
);
-- Single-use recovery codes, as HMACs under a key derived from the master key: a database dump
-- alone does not yield one. Ten per user at most; a new set replaces the old.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
