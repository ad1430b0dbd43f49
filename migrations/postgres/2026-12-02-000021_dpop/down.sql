DROP TABLE dpop_proofs;
ALTER TABLE token_families DROP COLUMN dpop_jkt;
