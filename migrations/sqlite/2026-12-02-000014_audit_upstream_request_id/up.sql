-- The request id a trusted proxy sent, kept apart from the server's own (which it no longer
-- replaces): a client behind a pass-through proxy could otherwise choose its request id.
ALTER TABLE audit_events ADD COLUMN upstream_request_id TEXT;
