-- Security events, for operators (tessera-admin audit list). Never a secret.
CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    occurred_at BIGINT NOT NULL,
    kind        TEXT NOT NULL,          -- e.g. login.failure, refresh.reuse_detected, client.disabled
    actor       TEXT,                   -- who acted: a client id, a user id, or admin:<os user>
    subject     TEXT,                   -- what it was about: a user, family, client or key id
    client_ip   TEXT,
    detail      TEXT                    -- a short human-readable note
);
CREATE INDEX audit_events_time ON audit_events (occurred_at);
