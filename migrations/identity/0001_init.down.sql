DROP FUNCTION IF EXISTS identity.find_login(text);
DROP TABLE IF EXISTS identity.idempotency_keys;
DROP TABLE IF EXISTS identity.role_user;
DROP TABLE IF EXISTS identity.roles;
DROP TABLE IF EXISTS identity.users;
DROP TABLE IF EXISTS identity.tenants;
DROP TABLE IF EXISTS identity.plans;
