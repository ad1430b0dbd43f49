DROP INDEX token_families_expires;
DROP INDEX token_families_revoked;
