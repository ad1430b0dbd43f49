ALTER TABLE authorization_codes DROP COLUMN redirect_uri_given;
ALTER TABLE clients DROP COLUMN allow_introspection;
DROP TABLE revoked_access_tokens;
