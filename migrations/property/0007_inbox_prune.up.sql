-- Inbox housekeeping (fusion-events' InboxPruner): the owner role deletes inbox rows
-- past their retention across tenants. This policy is its only cross-tenant view of
-- the table; the application role still sees only its tenant's rows.
CREATE POLICY housekeeping ON property.inbox_events FOR ALL TO fusion_owner USING (true) WITH CHECK (true);
CREATE INDEX inbox_events_created_at_idx ON property.inbox_events (created_at);
