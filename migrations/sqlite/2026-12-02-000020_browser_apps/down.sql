ALTER TABLE clients DROP COLUMN refresh_absolute_ttl_ms;
ALTER TABLE clients DROP COLUMN allowed_origins;
