-- Notes without an author are system notes, written from integration events; they go
-- (every tenant's: the owner, which runs this, is exempt from row-level security only
-- for the one statement).
ALTER TABLE crm.notes NO FORCE ROW LEVEL SECURITY;
DELETE FROM crm.notes WHERE user_id IS NULL;
ALTER TABLE crm.notes FORCE ROW LEVEL SECURITY;
ALTER TABLE crm.notes ALTER COLUMN user_id SET NOT NULL;

ALTER TABLE crm.deals
    DROP CONSTRAINT IF EXISTS deals_lot_conflict_check,
    DROP COLUMN IF EXISTS lot_conflict_at,
    DROP COLUMN IF EXISTS lot_conflict_deal_id,
    DROP COLUMN IF EXISTS lot_conflict_status;
DROP INDEX IF EXISTS crm.deals_won_lot_key;
