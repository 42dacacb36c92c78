-- Least privilege: crm's service connects as its own login role, fusion_crm, which
-- takes over exactly the privileges the shared fusion_app held in this schema; then
-- fusion_app loses them. Every service used to connect as fusion_app, so until now any
-- of them could read crm's tables; from here only fusion_crm (and the owner, which
-- runs the migrations) can. The role must exist first: `fusion_db::ensure_roles` makes
-- it in development and tests, a DBA in production (see docs/SECURITY.md).
--
-- Later migrations of this schema grant to fusion_crm, never to fusion_app.

DO $$
DECLARE
    from_role CONSTANT regrole := 'fusion_app';
    to_role CONSTANT text := 'fusion_crm';
    held record;
BEGIN
    -- Tables, views and sequences: each privilege the old role holds, one by one, so
    -- the new role gets exactly what the service needed (no more than before).
    FOR held IN
        SELECT c.relname, c.relkind, a.privilege_type
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
         CROSS JOIN LATERAL aclexplode(c.relacl) a
         WHERE n.nspname = 'crm' AND a.grantee = from_role
    LOOP
        EXECUTE format('GRANT %s ON %s crm.%I TO %I', held.privilege_type,
            CASE WHEN held.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
            held.relname, to_role);
    END LOOP;
    -- Column privileges (none today; kept so a later column grant moves too).
    FOR held IN
        SELECT c.relname, att.attname, a.privilege_type
          FROM pg_attribute att
          JOIN pg_class c ON c.oid = att.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         CROSS JOIN LATERAL aclexplode(att.attacl) a
         WHERE n.nspname = 'crm' AND a.grantee = from_role
    LOOP
        EXECUTE format('GRANT %s (%I) ON crm.%I TO %I', held.privilege_type,
            held.attname, held.relname, to_role);
    END LOOP;
    -- Functions (none today).
    FOR held IN
        SELECT p.oid::regprocedure AS function, a.privilege_type
          FROM pg_proc p
          JOIN pg_namespace n ON n.oid = p.pronamespace
         CROSS JOIN LATERAL aclexplode(p.proacl) a
         WHERE n.nspname = 'crm' AND a.grantee = from_role
    LOOP
        EXECUTE format('GRANT %s ON FUNCTION %s TO %I', held.privilege_type, held.function,
            to_role);
    END LOOP;
    -- The schema itself (USAGE).
    FOR held IN
        SELECT a.privilege_type
          FROM pg_namespace n
         CROSS JOIN LATERAL aclexplode(n.nspacl) a
         WHERE n.nspname = 'crm' AND a.grantee = from_role
    LOOP
        EXECUTE format('GRANT %s ON SCHEMA crm TO %I', held.privilege_type, to_role);
    END LOOP;
END
$$;

-- Then the old role loses everything here, whatever it held.
REVOKE ALL ON ALL TABLES IN SCHEMA crm FROM fusion_app;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA crm FROM fusion_app;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA crm FROM fusion_app;
DO $$
DECLARE
    held record;
BEGIN
    FOR held IN
        SELECT c.relname, att.attname
          FROM pg_attribute att
          JOIN pg_class c ON c.oid = att.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'crm' AND att.attacl IS NOT NULL
    LOOP
        EXECUTE format('REVOKE ALL (%I) ON crm.%I FROM fusion_app', held.attname, held.relname);
    END LOOP;
END
$$;
REVOKE ALL ON SCHEMA crm FROM fusion_app;
