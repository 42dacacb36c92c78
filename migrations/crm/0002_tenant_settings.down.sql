DROP TABLE crm.tenant_settings;
