-- A lost or reopened deal releases the lots taken for it (the property-lot-sales
-- consumer of crm.deal.lost and crm.deal.reopened finds them by deal), and HoldLot and
-- ReserveLot now take a deal too: find a tenant's lots of one deal without a scan.
CREATE INDEX lots_tenant_id_deal_id_idx ON property.lots (tenant_id, deal_id)
    WHERE deal_id IS NOT NULL;
