DROP TABLE IF EXISTS finance.idempotency_keys, finance.dead_letters, finance.inbox_events,
    finance.outbox_events, finance.xero_states, finance.xero_connections, finance.commissions,
    finance.commission_plans, finance.payments, finance.invoice_items, finance.invoices,
    finance.settings;
