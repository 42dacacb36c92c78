ALTER TABLE identity.tenants DROP COLUMN IF EXISTS time_zone;
