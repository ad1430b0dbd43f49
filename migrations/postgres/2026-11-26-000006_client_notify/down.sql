DROP TRIGGER clients_truncated ON clients;
DROP TRIGGER clients_changed ON clients;
DROP FUNCTION tessera_clients_changed();
