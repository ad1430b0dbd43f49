DROP TABLE login_places;
ALTER TABLE login_failures DROP COLUMN refused;
