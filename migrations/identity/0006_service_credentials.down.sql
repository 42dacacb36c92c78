-- System accounts stay as ordinary service accounts (audit fields of every context
-- name them); they lose the system role with it. The platform_service role that
-- bootstrap made goes too: its permission means nothing any more. Custom roles
-- renamed from `system` keep their new names.
ALTER TABLE identity.roles NO FORCE ROW LEVEL SECURITY;
DELETE FROM identity.roles WHERE built_in AND name IN ('system', 'platform_service');
ALTER TABLE identity.roles FORCE ROW LEVEL SECURITY;

DROP INDEX IF EXISTS identity.users_tenant_id_service_name_key;
ALTER TABLE identity.users
    DROP CONSTRAINT IF EXISTS users_service_name_kind_check,
    DROP COLUMN IF EXISTS service_name;
