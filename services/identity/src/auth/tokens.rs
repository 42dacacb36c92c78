//! Access tokens (EdDSA JWTs) and opaque, rotating refresh tokens.
//!
//! A refresh token is `rt_<tenant id>_<32 random bytes, base64url>`. Only its SHA-256
//! is stored. The tenant id lets Refresh bind its transaction to the right tenant
//! before looking the token up, so no cross-tenant read is needed. Every token rotated
//! from one login shares a family; presenting a token that was already used means it
//! was stolen or replayed, and revokes the whole family.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Row};

use fusion_tenancy::Claims;

use crate::AppState;
use crate::error::IdentityError;

/// A freshly issued pair.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    /// Signed JWT.
    pub access_token: String,
    /// Opaque refresh token.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i32,
}

/// A user's role names and the union of their permissions.
pub async fn roles_and_permissions(
    conn: &mut PgConnection,
    user_id: i64,
) -> Result<(Vec<String>, Vec<String>), IdentityError> {
    let rows = sqlx::query(
        "SELECT r.name, r.permissions
         FROM identity.role_user ru JOIN identity.roles r ON r.tenant_id = ru.tenant_id AND r.id = ru.role_id
         WHERE ru.user_id = $1 AND r.deleted_at IS NULL
         ORDER BY r.name",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut roles = Vec::new();
    let mut perms: Vec<String> = Vec::new();
    for row in rows {
        roles.push(row.get::<String, _>("name"));
        perms.extend(row.get::<Vec<String>, _>("permissions"));
    }
    perms.sort();
    perms.dedup();
    Ok((roles, perms))
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The tenant a refresh token belongs to, if it is well-formed.
pub fn refresh_token_tenant(token: &str) -> Option<i64> {
    let rest = token.strip_prefix("rt_")?;
    let (tenant, secret) = rest.split_once('_')?;
    (secret.len() >= 40).then_some(())?;
    tenant.parse().ok().filter(|t: &i64| *t > 0)
}

/// A new opaque refresh token for `tenant_id`: 256 random bits, URL-safe.
fn new_refresh_token(tenant_id: i64) -> String {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    format!("rt_{tenant_id}_{}", URL_SAFE_NO_PAD.encode(secret))
}

/// The standing of tenant `tenant_id` if it may have tokens: an inactive tenant may
/// not (TENANT_INACTIVE). Every path to a token (Login, Refresh, IssueServiceToken)
/// comes through here, after the credentials were checked, so the refusal tells
/// nothing to someone without them.
async fn usable_standing(
    conn: &mut PgConnection,
    tenant_id: i64,
) -> Result<crate::store::tenants::Standing, IdentityError> {
    let standing = crate::store::tenants::standing(conn, tenant_id).await?;
    if standing.inactive {
        return Err(IdentityError::TenantInactive);
    }
    Ok(standing)
}

/// Seconds since the epoch of `at` (before the epoch reads as the epoch: long past).
fn epoch_secs(at: Option<chrono::DateTime<chrono::Utc>>) -> Option<u64> {
    at.map(|t| u64::try_from(t.timestamp()).unwrap_or(0))
}

/// Issues an access token and a refresh token (a new family unless `family` is given),
/// inside the caller's tenant-bound transaction. The access token carries the user's
/// role names and permissions, the tenant's time zone (`tz`) and, for a tenant on
/// trial, when it turns read-only (`ro_at`), as they are now. An inactive tenant gets
/// nothing (TENANT_INACTIVE).
pub async fn issue(
    state: &AppState,
    conn: &mut PgConnection,
    tenant_id: i64,
    user_id: i64,
    family: Option<(uuid::Uuid, i64)>,
    source: Option<&str>,
) -> Result<IssuedTokens, IdentityError> {
    let standing = usable_standing(conn, tenant_id).await?;
    let (roles, perms) = roles_and_permissions(conn, user_id).await?;
    let ttl = state.config.access_token_ttl;
    let claims = Claims::new(
        &state.config.service.jwt,
        tenant_id,
        user_id,
        roles,
        perms,
        ttl,
    )
    .with_time_zone(standing.time_zone)
    .read_only_from(epoch_secs(standing.read_only_from));
    let access_token = state.keys.signer().sign(&claims);

    let refresh_token = new_refresh_token(tenant_id);
    let (family_id, parent_id) = match family {
        Some((family_id, parent)) => (family_id, Some(parent)),
        None => (uuid::Uuid::new_v4(), None),
    };
    sqlx::query(
        "INSERT INTO identity.refresh_tokens (tenant_id, user_id, family_id, token_hash, parent_id, expires_at, source)
         VALUES ($1, $2, $3, $4, $5, now() + $6, $7)",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(family_id)
    .bind(hash(&refresh_token))
    .bind(parent_id)
    .bind(chrono::Duration::from_std(state.config.refresh_token_ttl).unwrap_or(chrono::Duration::days(30)))
    .bind(source.map(|s| s.chars().take(255).collect::<String>()))
    .execute(&mut *conn)
    .await?;
    Ok(IssuedTokens {
        access_token,
        refresh_token,
        expires_in: clamp_secs(ttl),
    })
}

/// An access token for service account `account_id`, inside the caller's tenant-bound
/// transaction: the account's roles and permissions and the tenant's time zone as they
/// are now, its subject marked as a service (`svc`). No refresh token: a service asks
/// IssueServiceToken again. Returns the token and its lifetime in seconds.
pub async fn issue_service(
    state: &AppState,
    conn: &mut PgConnection,
    tenant_id: i64,
    account_id: i64,
) -> Result<ServiceToken, IdentityError> {
    let standing = usable_standing(conn, tenant_id).await?;
    let (roles, perms) = roles_and_permissions(conn, account_id).await?;
    let ttl = state.config.access_token_ttl;
    let time_zone = standing.time_zone;
    let claims = Claims::new(
        &state.config.service.jwt,
        tenant_id,
        account_id,
        roles,
        perms,
        ttl,
    )
    .with_time_zone(time_zone.clone())
    .read_only_from(epoch_secs(standing.read_only_from))
    .for_service_account();
    Ok(ServiceToken {
        access_token: state.keys.signer().sign(&claims),
        expires_in: clamp_secs(ttl),
        time_zone,
    })
}

/// An access token issued to a service account.
pub struct ServiceToken {
    /// The signed JWT.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: i32,
    /// The tenant's IANA time zone (its `tz` claim).
    pub time_zone: String,
}

fn clamp_secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

/// Rotates a refresh token. A used token revokes its family (and fails).
pub async fn refresh(
    state: &AppState,
    token: &str,
    source: Option<&str>,
) -> Result<(i64, i64, IssuedTokens), IdentityError> {
    let tenant_id = refresh_token_tenant(token).ok_or(IdentityError::RefreshTokenInvalid)?;
    let mut tx = state.db.begin(tenant_id).await?;
    let row = sqlx::query(
        "SELECT id, user_id, family_id, used_at IS NOT NULL AS used,
                revoked_at IS NOT NULL OR expires_at <= now() AS dead
         FROM identity.refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(hash(token))
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(IdentityError::RefreshTokenInvalid)?;
    let (id, user_id, family_id): (i64, i64, uuid::Uuid) =
        (row.get("id"), row.get("user_id"), row.get("family_id"));
    if row.get::<bool, _>("dead") {
        return Err(IdentityError::RefreshTokenInvalid);
    }
    if row.get::<bool, _>("used") {
        revoke_family(&mut tx, family_id, "reuse").await?;
        tx.commit().await?;
        tracing::warn!(
            tenant.id = tenant_id,
            user.id = user_id,
            "refresh token reused; family revoked"
        );
        return Err(IdentityError::RefreshTokenReused);
    }
    // Tenant deletion revokes its tokens too; checking here as well means a session
    // never outlives its tenant, whatever path deleted it.
    let active: Option<bool> = sqlx::query_scalar(
        "SELECT u.active AND t.deleted_at IS NULL
         FROM identity.users u JOIN identity.tenants t ON t.id = u.tenant_id
         WHERE u.id = $1 AND u.deleted_at IS NULL",
    )
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    if active != Some(true) {
        revoke_family(&mut tx, family_id, "user_inactive").await?;
        tx.commit().await?;
        return Err(IdentityError::RefreshTokenInvalid);
    }
    sqlx::query(
        "UPDATE identity.refresh_tokens SET used_at = now(), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let issued = issue(
        state,
        &mut tx,
        tenant_id,
        user_id,
        Some((family_id, id)),
        source,
    )
    .await?;
    tx.commit().await?;
    Ok((tenant_id, user_id, issued))
}

/// Revokes the family of `token`; unknown or malformed tokens are ignored (logout is
/// idempotent and reveals nothing).
pub async fn logout(state: &AppState, token: &str) -> Result<(), IdentityError> {
    let Some(tenant_id) = refresh_token_tenant(token) else {
        return Ok(());
    };
    let mut tx = state.db.begin(tenant_id).await?;
    let family: Option<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT family_id, user_id FROM identity.refresh_tokens WHERE token_hash = $1",
    )
    .bind(hash(token))
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((family, user_id)) = family {
        revoke_family(&mut tx, family, "logout").await?;
        // Access tokens carry no session, so the user's all go: other sessions keep
        // their refresh tokens and get new ones on their next refresh.
        let whose = super::revocation::Whose::User(user_id);
        super::revocation::revoke_access(state, &mut tx, whose, "logout").await?;
    }
    Ok(tx.commit().await?)
}

async fn revoke_family(
    conn: &mut PgConnection,
    family_id: uuid::Uuid,
    reason: &str,
) -> Result<(), IdentityError> {
    sqlx::query(
        "UPDATE identity.refresh_tokens SET revoked_at = now(), revoked_reason = $2, updated_at = now()
         WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes every live refresh token of a user (deactivation, deletion, new password).
pub async fn revoke_user_refresh_tokens(
    conn: &mut PgConnection,
    user_id: i64,
    reason: &str,
) -> Result<u64, IdentityError> {
    let result = sqlx::query(
        "UPDATE identity.refresh_tokens SET revoked_at = now(), revoked_reason = $2, updated_at = now()
         WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// Deletes refresh tokens that can never be used again: expired, or revoked, longer
/// than `retention` ago (kept that long for the record). Connected as the owner, across
/// tenants: the owner's policy on `identity.refresh_tokens` shows it only such rows.
/// Returns how many went.
pub async fn prune_dead(
    owner_pool: &sqlx::PgPool,
    retention: Duration,
) -> Result<u64, sqlx::Error> {
    let cutoff =
        chrono::Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    Ok(
        sqlx::query("DELETE FROM identity.refresh_tokens WHERE expires_at < $1 OR revoked_at < $1")
            .bind(cutoff)
            .execute(owner_pool)
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::{hash, new_refresh_token, refresh_token_tenant};

    #[test]
    fn issued_refresh_tokens_carry_their_tenant_and_are_unique() {
        let a = new_refresh_token(7);
        let b = new_refresh_token(7);
        assert_ne!(a, b);
        assert_eq!(refresh_token_tenant(&a), Some(7));
        // 32 bytes of base64url without padding.
        assert_eq!(a.len(), "rt_7_".len() + 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        );
    }

    #[test]
    fn only_a_digest_of_the_token_is_stored() {
        let token = new_refresh_token(1);
        let digest = hash(&token);
        assert_eq!(digest.len(), 32);
        assert_eq!(digest, hash(&token));
        assert_ne!(digest, hash(&new_refresh_token(1)));
    }

    #[test]
    fn the_tenant_is_read_from_a_well_formed_refresh_token_only() {
        let secret = "A".repeat(43);
        assert_eq!(refresh_token_tenant(&format!("rt_42_{secret}")), Some(42));
        assert_eq!(refresh_token_tenant(&format!("rt_0_{secret}")), None);
        assert_eq!(refresh_token_tenant(&format!("rt_x_{secret}")), None);
        assert_eq!(refresh_token_tenant("rt_42_short"), None);
        assert_eq!(refresh_token_tenant("garbage"), None);
    }
}
