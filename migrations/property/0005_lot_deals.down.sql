ALTER TABLE property.lot_status_history DROP COLUMN IF EXISTS deal_id;
ALTER TABLE property.lots DROP COLUMN IF EXISTS deal_id;
