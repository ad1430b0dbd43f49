-- How a client takes part in OpenID Connect: the algorithm of its ID tokens (NULL: the access
-- tokens' key), where RP-initiated logout may send the user back (space-separated URIs,
-- matched exactly), and where back-channel logout tokens go, with or without sid required.
ALTER TABLE clients ADD COLUMN id_token_alg TEXT;
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BOOLEAN NOT NULL DEFAULT 0;
