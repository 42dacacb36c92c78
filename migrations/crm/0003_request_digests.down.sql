DROP INDEX IF EXISTS crm.idempotency_keys_created_at_idx;
DROP POLICY IF EXISTS prune_expired ON crm.idempotency_keys;
ALTER TABLE crm.idempotency_keys DROP COLUMN IF EXISTS request_digest;
