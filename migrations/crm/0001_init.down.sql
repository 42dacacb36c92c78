-- The schema itself (it holds _sqlx_migrations) and the pg_trgm extension (database-
-- wide, possibly used by other contexts) are left in place.
ALTER TABLE IF EXISTS crm.leads DROP CONSTRAINT IF EXISTS leads_converted_deal_fkey;
ALTER TABLE IF EXISTS crm.leads DROP CONSTRAINT IF EXISTS leads_converted_contact_fkey;
DROP TABLE IF EXISTS crm.idempotency_keys;
DROP TABLE IF EXISTS crm.outbox_events;
DROP TABLE IF EXISTS crm.notes;
DROP TABLE IF EXISTS crm.tasks;
DROP TABLE IF EXISTS crm.deals;
DROP TABLE IF EXISTS crm.contacts;
DROP TABLE IF EXISTS crm.leads;
DROP TABLE IF EXISTS crm.deal_stages;
DROP TABLE IF EXISTS crm.lead_statuses;
