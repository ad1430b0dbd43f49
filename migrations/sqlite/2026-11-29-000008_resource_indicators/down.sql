ALTER TABLE authorization_codes DROP COLUMN resources;
ALTER TABLE token_families DROP COLUMN resources;
DROP TABLE resources;
