-- The id Xero gives the connection of our app to the tenant's organisation
-- (`GET /connections`), which `DELETE /connections/{id}` needs to disconnect it at
-- Xero. Connections made before it was kept have none and are only forgotten here.
ALTER TABLE finance.xero_connections ADD COLUMN xero_connection_id varchar(255);
