-- When the client last got a token, to the day (tessera-admin doctor finds clients unused for months).
ALTER TABLE clients ADD COLUMN last_used_at BIGINT;
