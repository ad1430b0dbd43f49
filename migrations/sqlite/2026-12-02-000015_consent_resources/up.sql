-- A consent covers the resource servers (RFC 8707) the user saw on the consent page, as well
-- as the scope: space-separated URIs, NULL for none. A request naming another resource asks
-- again.
ALTER TABLE consents ADD COLUMN resources TEXT;
