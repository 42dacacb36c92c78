-- Housekeeping runs as fusion_identity_jobs, not as the schema owner: fusion_owner owns
-- every schema, so a relay or purge connected as it could read another context's
-- tables. This role reaches identity only: the table privileges the jobs use, and a place
-- beside fusion_owner in every policy that lets housekeeping see across tenants
-- (relay, housekeeping, purge). Tenant tables still apply their row-level security.
GRANT USAGE ON SCHEMA identity TO fusion_identity_jobs;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA identity TO fusion_identity_jobs;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA identity TO fusion_identity_jobs;
ALTER DEFAULT PRIVILEGES FOR ROLE fusion_owner IN SCHEMA identity
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO fusion_identity_jobs;
ALTER DEFAULT PRIVILEGES FOR ROLE fusion_owner IN SCHEMA identity
    GRANT USAGE, SELECT ON SEQUENCES TO fusion_identity_jobs;

DO $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT policyname, tablename, roles FROM pg_policies
        WHERE schemaname = 'identity' AND 'fusion_owner' = ANY (roles)
    LOOP
        EXECUTE format(
            'ALTER POLICY %I ON identity.%I TO %s',
            p.policyname,
            p.tablename,
            (SELECT string_agg(quote_ident(r), ', ')
             FROM unnest(p.roles || ARRAY['fusion_identity_jobs']::name[]) AS r)
        );
    END LOOP;
END
$$;
