ALTER TABLE audit_events DROP COLUMN upstream_request_id;
