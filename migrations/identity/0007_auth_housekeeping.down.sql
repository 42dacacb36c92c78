-- Pruned tokens stay pruned; granted permissions stay granted.
DROP TABLE IF EXISTS identity.built_in_grants;
DROP INDEX IF EXISTS identity.refresh_tokens_expires_at_idx;
DROP POLICY IF EXISTS prune_dead ON identity.refresh_tokens;
