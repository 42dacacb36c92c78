-- Each tenant's CRM settings: for now the country phone numbers without a country code
-- are read in (for their E.164 form). A tenant without a row uses the service's
-- configured default.
CREATE TABLE crm.tenant_settings (
    tenant_id       bigint      PRIMARY KEY,
    default_country varchar(2)  NOT NULL CHECK (default_country ~ '^[A-Z]{2}$'),
    version         bigint      NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE crm.tenant_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.tenant_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON crm.tenant_settings
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint);

GRANT SELECT, INSERT, UPDATE, DELETE ON crm.tenant_settings TO fusion_app;
