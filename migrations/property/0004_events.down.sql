DROP TABLE IF EXISTS property.dead_letters;
DROP TABLE IF EXISTS property.inbox_events;
DROP TABLE IF EXISTS property.outbox_events;
