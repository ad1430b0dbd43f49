ALTER TABLE login_failures DROP COLUMN refused;
ALTER TABLE login_failures DROP COLUMN pending_since;
ALTER TABLE login_failures DROP COLUMN pending;
