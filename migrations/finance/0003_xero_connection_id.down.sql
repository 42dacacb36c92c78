ALTER TABLE finance.xero_connections DROP COLUMN IF EXISTS xero_connection_id;
