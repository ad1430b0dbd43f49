ALTER TABLE clients DROP COLUMN last_used_at;
