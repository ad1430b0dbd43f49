ALTER TABLE authorization_codes DROP COLUMN dpop_jkt;
ALTER TABLE reuse_incidents DROP COLUMN dpop_jkt;
ALTER TABLE clients DROP COLUMN require_dpop;
DROP TABLE dpop_proofs;
ALTER TABLE token_families DROP COLUMN dpop_jkt;
