DO $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT policyname, tablename, roles FROM pg_policies
        WHERE schemaname = 'crm' AND 'fusion_crm_jobs' = ANY (roles)
    LOOP
        EXECUTE format(
            'ALTER POLICY %I ON crm.%I TO %s',
            p.policyname,
            p.tablename,
            (SELECT string_agg(quote_ident(r), ', ')
             FROM unnest(array_remove(p.roles, 'fusion_crm_jobs'::name)) AS r)
        );
    END LOOP;
END
$$;

ALTER DEFAULT PRIVILEGES FOR ROLE fusion_owner IN SCHEMA crm
    REVOKE USAGE, SELECT ON SEQUENCES FROM fusion_crm_jobs;
ALTER DEFAULT PRIVILEGES FOR ROLE fusion_owner IN SCHEMA crm
    REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM fusion_crm_jobs;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA crm FROM fusion_crm_jobs;
REVOKE ALL ON ALL TABLES IN SCHEMA crm FROM fusion_crm_jobs;
REVOKE USAGE ON SCHEMA crm FROM fusion_crm_jobs;
