DROP INDEX token_families_sid;
ALTER TABLE token_families DROP COLUMN sid;
ALTER TABLE token_families DROP COLUMN auth_time;
ALTER TABLE authorization_codes DROP COLUMN sid;
ALTER TABLE authorization_codes DROP COLUMN auth_time;
ALTER TABLE authorization_codes DROP COLUMN nonce;
