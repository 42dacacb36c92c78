-- A request id names one request (AIP-155): keep a digest of the request it was first
-- sent with, so the same id with a different request is refused instead of replayed.
-- Rows saved before this migration have no digest and are replayed as before.
ALTER TABLE identity.idempotency_keys ADD COLUMN request_digest bytea;

-- Request ids are kept for a fixed time (seven days); the housekeeping job, connected
-- as the owner, removes older ones across tenants. Row-level security is forced on the
-- owner too, so it sees only rows past that age.
CREATE POLICY prune_expired ON identity.idempotency_keys FOR ALL TO fusion_owner
    USING (created_at < now() - interval '7 days');
CREATE INDEX idempotency_keys_created_at_idx ON identity.idempotency_keys (created_at);
