DROP TABLE IF EXISTS finance.deal_milestones;
ALTER INDEX finance.commission_plans_tenant_id_project_id_key
    RENAME TO commission_plans_live_project_key;
