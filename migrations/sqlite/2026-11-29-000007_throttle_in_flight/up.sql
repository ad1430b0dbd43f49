-- Only failed sign-ins count against the limit. A sign-in whose password is being checked holds
-- a place (`pending`, since `pending_since`) so that parallel guesses cannot all slip in under
-- it; `refused` counts the attempts turned away in the current window, which are audited once.
ALTER TABLE login_failures ADD COLUMN pending BIGINT NOT NULL DEFAULT 0;
ALTER TABLE login_failures ADD COLUMN pending_since BIGINT NOT NULL DEFAULT 0;
ALTER TABLE login_failures ADD COLUMN refused BIGINT NOT NULL DEFAULT 0;
