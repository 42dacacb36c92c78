DO $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT policyname, tablename, roles FROM pg_policies
        WHERE schemaname = 'property' AND 'fusion_property_jobs' = ANY (roles)
    LOOP
        EXECUTE format(
            'ALTER POLICY %I ON property.%I TO %s',
            p.policyname,
            p.tablename,
            (SELECT string_agg(quote_ident(r), ', ')
             FROM unnest(array_remove(p.roles, 'fusion_property_jobs'::name)) AS r)
        );
    END LOOP;
END
$$;

ALTER DEFAULT PRIVILEGES FOR ROLE fusion_owner IN SCHEMA property
    REVOKE USAGE, SELECT ON SEQUENCES FROM fusion_property_jobs;
ALTER DEFAULT PRIVILEGES FOR ROLE fusion_owner IN SCHEMA property
    REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM fusion_property_jobs;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA property FROM fusion_property_jobs;
REVOKE ALL ON ALL TABLES IN SCHEMA property FROM fusion_property_jobs;
REVOKE USAGE ON SCHEMA property FROM fusion_property_jobs;
