DROP INDEX IF EXISTS identity.idempotency_keys_created_at_idx;
DROP POLICY IF EXISTS prune_expired ON identity.idempotency_keys;
ALTER TABLE identity.idempotency_keys DROP COLUMN IF EXISTS request_digest;
