-- Commissions, as their consumers and API need them.
--
-- A second live plan for a project (or a second default) is refused by the unique
-- index, and the API names the field from the index's name: it is renamed after the
-- field it protects (`<table>_tenant_id_<field>_key`, as every unique constraint is).
ALTER INDEX finance.commission_plans_live_project_key
    RENAME TO commission_plans_tenant_id_project_id_key;

-- Where each deal's lot is in its sale, as property's `property.lot.status_changed`
-- events tell it: the lot milestone (exchanged, unconditional, settled) it has reached
-- for the deal, or NULL once it is at a status that is none of them (released, say).
-- The events and crm's `crm.deal.won` reach finance on separate consumers, so a lot
-- may be exchanged before its deal's commissions exist: the win reads this row to make
-- the milestones already reached payable at once. Both consumers write the row first
-- (an upsert, which locks it), so a win and a lot event of the same deal take turns
-- and each sees what the other committed.
CREATE TABLE finance.deal_milestones (
    tenant_id  bigint      NOT NULL,
    deal_id    bigint      NOT NULL,
    milestone  varchar(20) CHECK (milestone IN ('exchanged', 'unconditional', 'settled')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, deal_id)
);

ALTER TABLE finance.deal_milestones ENABLE ROW LEVEL SECURITY;
ALTER TABLE finance.deal_milestones FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON finance.deal_milestones
    USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint);

GRANT SELECT, INSERT, UPDATE ON finance.deal_milestones TO fusion_finance;
