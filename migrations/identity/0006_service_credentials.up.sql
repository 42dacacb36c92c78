-- Service credentials for event consumers (issue 11): a platform service (crm,
-- property, ...) consuming an event acts in the event's tenant as that tenant's
-- *system account* for the service, never as a person.
--
-- service_name marks the two kinds of account bootstrap and IssueServiceToken manage:
-- in the platform tenant, the service account provisioned from configuration for a
-- service (client id `sa_platform_<service>`); in every other tenant, the system
-- account created the first time that service asks for a token there. One of each per
-- tenant and service: the unique index is what makes concurrent first uses create one
-- account. A soft-deleted account keeps its name, so deleting it (like deactivating
-- it) stops tokens for that service in that tenant until it is restored.
ALTER TABLE identity.users
    ADD COLUMN service_name varchar(40) CHECK (service_name ~ '^[a-z][a-z0-9-]*$'),
    ADD CONSTRAINT users_service_name_kind_check CHECK (service_name IS NULL OR kind = 'service');
CREATE UNIQUE INDEX users_tenant_id_service_name_key
    ON identity.users (tenant_id, service_name) WHERE service_name IS NOT NULL;

-- The built-in `system` role that system accounts hold: the reads an event consumer
-- needs, no write (the catalogue's `system_permissions`; a new tenant gets the same
-- from its built-in roles). A tenant's custom role already called `system` keeps its
-- permissions and holders under the name `system_custom_<id>`. Row-level security is
-- forced on the owner too, so it is lifted for these statements.
ALTER TABLE identity.roles NO FORCE ROW LEVEL SECURITY;
UPDATE identity.roles
SET name = 'system_custom_' || id, version = version + 1, updated_at = now()
WHERE name = 'system' AND NOT built_in AND deleted_at IS NULL;
INSERT INTO identity.roles (tenant_id, name, description, permissions, built_in)
SELECT t.id, 'system',
       'Platform services acting in this tenant (event consumers): reads people, stock, the pipeline and finance.',
       ARRAY[
           'crm.contacts.read', 'crm.deals.read', 'crm.leads.read', 'crm.notes.read',
           'crm.pipeline.read', 'crm.tasks.read', 'finance.commissions.read',
           'finance.invoices.read', 'identity.tenants.read', 'identity.users.read',
           'property.developers.read', 'property.features.read', 'property.lots.read',
           'property.media.read', 'property.projects.read', 'property.stages.read'
       ]::text[],
       true
FROM identity.tenants t
WHERE NOT EXISTS (
    SELECT 1 FROM identity.roles r
    WHERE r.tenant_id = t.id AND r.name = 'system' AND r.deleted_at IS NULL
);
ALTER TABLE identity.roles FORCE ROW LEVEL SECURITY;
