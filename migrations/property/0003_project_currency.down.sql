ALTER TABLE property.projects DROP COLUMN IF EXISTS currency;
