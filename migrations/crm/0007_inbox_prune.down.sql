DROP INDEX IF EXISTS crm.inbox_events_created_at_idx;
DROP POLICY IF EXISTS housekeeping ON crm.inbox_events;
