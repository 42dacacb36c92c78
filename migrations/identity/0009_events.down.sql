DROP TABLE IF EXISTS identity.outbox_events;
