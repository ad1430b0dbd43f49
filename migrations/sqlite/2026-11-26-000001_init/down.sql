DROP TABLE signing_keys;
DROP TABLE reuse_incidents;
DROP TABLE refresh_tokens;
DROP TABLE token_families;
DROP TABLE users;
DROP TABLE clients;
