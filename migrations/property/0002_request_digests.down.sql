DROP INDEX IF EXISTS property.idempotency_keys_created_at_idx;
DROP POLICY IF EXISTS prune_expired ON property.idempotency_keys;
ALTER TABLE property.idempotency_keys DROP COLUMN IF EXISTS request_digest;
