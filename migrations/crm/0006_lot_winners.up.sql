-- Issue 11's crm side of a lot's sale.
--
-- One won deal per lot: within a tenant, at most one live deal with a given lot is
-- won. WinDeal, UpdateDeal (a won deal's lot) and UndeleteDeal (a won deal) check it
-- under a per-lot advisory lock to name the deal that already won; this index is what
-- holds whatever the code does. (It cannot be created while a tenant has two live won
-- deals on one lot: find them with
--   SELECT tenant_id, lot_id, array_agg(id) FROM crm.deals
--    WHERE status = 'won' AND deleted_at IS NULL AND lot_id IS NOT NULL
--    GROUP BY 1, 2 HAVING count(*) > 1;
-- and reopen or lose all but one.)
CREATE UNIQUE INDEX deals_won_lot_key ON crm.deals (tenant_id, lot_id)
    WHERE status = 'won' AND deleted_at IS NULL AND lot_id IS NOT NULL;

-- A won deal whose lot property refused to sell to it (`property.lot.sale_refused`,
-- crm-lot-sales): the lot's status then, the deal it is sold to (NULL when none) and
-- when crm learned of it. Only a won deal with a lot carries one; reopening the deal
-- or changing its lot clears it.
ALTER TABLE crm.deals
    ADD COLUMN lot_conflict_status  varchar(50),
    ADD COLUMN lot_conflict_deal_id bigint,
    ADD COLUMN lot_conflict_at      timestamptz,
    ADD CONSTRAINT deals_lot_conflict_check CHECK (
        (lot_conflict_status IS NULL) = (lot_conflict_at IS NULL)
        AND (lot_conflict_deal_id IS NULL OR lot_conflict_at IS NOT NULL)
        AND (lot_conflict_at IS NULL OR (status = 'won' AND lot_id IS NOT NULL)));

-- System notes: crm-lot-notes writes a note on the open deals of a lot whose status
-- changed. Its author is the consumer's service account, or none (NULL) while the
-- consumer runs without one.
ALTER TABLE crm.notes ALTER COLUMN user_id DROP NOT NULL;
