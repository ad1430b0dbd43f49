-- The HTTP request that caused the event (X-Request-Id); none for the CLI's.
ALTER TABLE audit_events ADD COLUMN request_id TEXT;
