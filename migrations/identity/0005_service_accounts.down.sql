ALTER TABLE identity.roles NO FORCE ROW LEVEL SECURITY;
UPDATE identity.roles
SET permissions = ARRAY(
        SELECT p FROM unnest(permissions) AS p
        WHERE p NOT IN ('identity.service_accounts.read', 'identity.service_accounts.write')
        ORDER BY p),
    version = version + 1,
    updated_at = now()
WHERE built_in AND name IN ('admin', 'platform_admin');
ALTER TABLE identity.roles FORCE ROW LEVEL SECURITY;

CREATE OR REPLACE FUNCTION identity.find_login(p_email text)
RETURNS TABLE (tenant_id bigint, user_id bigint, password_hash text, active boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, identity
AS $$
    SELECT u.tenant_id, u.id, u.password, u.active AND t.deleted_at IS NULL
    FROM identity.users u
    JOIN identity.tenants t ON t.id = u.tenant_id
    WHERE lower(u.email) = lower(p_email) AND u.deleted_at IS NULL
$$;

DROP TABLE IF EXISTS identity.service_account_secrets;
DROP VIEW IF EXISTS identity.service_accounts;
DROP VIEW IF EXISTS identity.people;
-- Service accounts have no email or password: they cannot outlive the kind column.
ALTER TABLE identity.users NO FORCE ROW LEVEL SECURITY;
DELETE FROM identity.users WHERE kind = 'service';
ALTER TABLE identity.users FORCE ROW LEVEL SECURITY;
ALTER TABLE identity.users
    DROP CONSTRAINT IF EXISTS users_person_credentials_check,
    ALTER COLUMN email SET NOT NULL,
    ALTER COLUMN password SET NOT NULL,
    DROP COLUMN IF EXISTS description,
    DROP COLUMN IF EXISTS kind;
