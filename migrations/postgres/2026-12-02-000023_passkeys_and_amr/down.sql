ALTER TABLE clients DROP COLUMN require_second_factor;
ALTER TABLE token_families DROP COLUMN amr;
ALTER TABLE authorization_codes DROP COLUMN amr;
ALTER TABLE sessions DROP COLUMN amr;
DROP TABLE webauthn_challenges;
DROP TABLE passkeys;
