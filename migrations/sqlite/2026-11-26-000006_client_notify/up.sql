-- PostgreSQL announces client changes to servers that cache clients (see the PostgreSQL
-- migration of the same name). SQLite has no notifications, and servers do not cache clients
-- on it: nothing to do. Kept so that both backends have the same migrations.
SELECT 1;
