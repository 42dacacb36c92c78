-- Authentication housekeeping (issue 12).
--
-- Refresh tokens that can never be used again (expired or revoked) are removed by the
-- housekeeping job, connected as the owner across tenants. Row-level security is
-- forced on the owner too, so it sees only such rows; live tokens stay invisible to it.
CREATE POLICY prune_dead ON identity.refresh_tokens FOR ALL TO fusion_owner
    USING (expires_at < now() OR revoked_at IS NOT NULL);
CREATE INDEX refresh_tokens_expires_at_idx ON identity.refresh_tokens (expires_at);

-- Which permission of the catalogue each built-in role has been given in every
-- tenant. A new tenant's built-in roles get the whole catalogue of their day; when a
-- release adds a permission to a built-in role, identity grants it to that role in
-- every existing tenant once, at start, and records it here, so a permission a
-- tenant's admin later takes away from the role stays taken away. A platform table:
-- no tenant_id, no row-level security. It starts empty, so the first start after this
-- migration brings every tenant's built-in roles up to the catalogue.
CREATE TABLE identity.built_in_grants (
    role_name  varchar(100) NOT NULL,
    permission varchar(200) NOT NULL,
    granted_at timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (role_name, permission)
);

GRANT SELECT, INSERT ON identity.built_in_grants TO fusion_app;
