-- Every change to a client is announced on the channel `tessera_clients` (payload: the
-- client's id, or '*' for a TRUNCATE), so that servers caching clients drop what changed.
CREATE FUNCTION tessera_clients_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tessera_clients', COALESCE(NEW.id, OLD.id, '*'));
    RETURN NULL;
END
$$;
CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION tessera_clients_changed();
CREATE TRIGGER clients_truncated AFTER TRUNCATE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_clients_changed();
