DROP INDEX IF EXISTS property.lots_tenant_id_deal_id_idx;
