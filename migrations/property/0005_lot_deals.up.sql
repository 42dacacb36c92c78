-- Lots sold through a deal: crm's `crm.deal.won` moves the deal's lot to exchanged
-- (property-lot-sales consumer) and the lot remembers which deal it was sold to, so a
-- second deal on the same lot is refused rather than silently made a second winner.
-- The status history names the deal of each change made for one.
ALTER TABLE property.lots ADD COLUMN deal_id bigint;
ALTER TABLE property.lot_status_history ADD COLUMN deal_id bigint;
