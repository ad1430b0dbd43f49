-- Only failed sign-ins count against the limit. A sign-in whose password is being checked holds
-- a place under each of its keys until its outcome is known, so that parallel guesses cannot all
-- slip in under the limit; a place left by an instance that stopped mid-sign-in expires on its
-- own. `refused` counts the attempts turned away in the current window, which are audited once.
ALTER TABLE login_failures ADD COLUMN refused BIGINT NOT NULL DEFAULT 0;
CREATE TABLE login_places (
    attempt    TEXT NOT NULL,
    key        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (attempt, key)
);
CREATE INDEX login_places_key ON login_places (key, expires_at);
