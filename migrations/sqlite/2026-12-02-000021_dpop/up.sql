-- DPoP (RFC 9449): the thumbprint of the key a family's tokens are bound to, and every proof
-- seen, by key and jti, for as long as a proof is accepted: no proof is used twice, on any
-- instance. Retention deletes the rows past `expires_at`.
ALTER TABLE token_families ADD COLUMN dpop_jkt TEXT;
CREATE TABLE dpop_proofs (
    -- SHA-256 of the key thumbprint, a space and the jti, hex.
    id TEXT PRIMARY KEY NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dpop_proofs_expires_at ON dpop_proofs (expires_at);
-- A client whose tokens must all be DPoP-bound: a token request without a proof is refused.
ALTER TABLE clients ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT 0;
-- A reuse incident's replay: the thumbprint of the DPoP key its proof came from, if it had one.
ALTER TABLE reuse_incidents ADD COLUMN dpop_jkt TEXT;
-- An authorization request's `dpop_jkt` (RFC 9449 §10): the code goes only with a proof from that key.
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
