DROP INDEX IF EXISTS property.inbox_events_created_at_idx;
DROP POLICY IF EXISTS housekeeping ON property.inbox_events;
