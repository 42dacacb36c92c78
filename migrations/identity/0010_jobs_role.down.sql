DO $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT policyname, tablename, roles FROM pg_policies
        WHERE schemaname = 'identity' AND 'fusion_identity_jobs' = ANY (roles)
    LOOP
        EXECUTE format(
            'ALTER POLICY %I ON identity.%I TO %s',
            p.policyname,
            p.tablename,
            (SELECT string_agg(quote_ident(r), ', ')
             FROM unnest(array_remove(p.roles, 'fusion_identity_jobs'::name)) AS r)
        );
    END LOOP;
END
$$;

ALTER DEFAULT PRIVILEGES FOR ROLE fusion_owner IN SCHEMA identity
    REVOKE USAGE, SELECT ON SEQUENCES FROM fusion_identity_jobs;
ALTER DEFAULT PRIVILEGES FOR ROLE fusion_owner IN SCHEMA identity
    REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM fusion_identity_jobs;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA identity FROM fusion_identity_jobs;
REVOKE ALL ON ALL TABLES IN SCHEMA identity FROM fusion_identity_jobs;
REVOKE USAGE ON SCHEMA identity FROM fusion_identity_jobs;
