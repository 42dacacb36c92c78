//! Revoking access tokens that are already out: `identity.access.revoked`, written to
//! identity's outbox in the transaction of the change that calls for it, so the
//! revocation is published if and only if the change commits. The edge and every
//! service follow it into their deny lists (fusion-events' `revocations`) and refuse
//! the tokens it names (TOKEN_REVOKED) within moments.
//!
//! Refresh tokens are revoked in the database as before; this is for the access
//! tokens, which are otherwise good until they expire.

use fusion_db::TenantTx;
use fusion_events::{Event, revocations::EVENT_TYPE};
use fusion_proto::identity::v1::AccessRevoked;

use crate::{AppState, IdentityError, SCHEMA};

/// Whose access tokens stop working.
#[derive(Clone, Debug)]
pub(crate) enum Whose {
    /// One user's (or service account's) of the transaction's tenant.
    User(i64),
    /// Those carrying a role name, in the transaction's tenant.
    Role { id: i64, name: String },
    /// Every token of a tenant (possibly not the transaction's: a platform operator
    /// acting on another tenant).
    Tenant(i64),
}

fn timestamp(ms: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
        nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
    }
}

/// Revokes, from now, the access tokens `whose` names, for `reason`, in `tx`.
pub(crate) async fn revoke_access(
    state: &AppState,
    tx: &mut TenantTx,
    whose: Whose,
    reason: &str,
) -> Result<(), IdentityError> {
    let now = fusion_tenancy::revocation::now_ms();
    // Every token issued before now has expired by then (its lifetime, plus the clock
    // skew verifiers forgive, which they add again on their side).
    let lifetime = state.config.access_token_ttl + state.config.service.jwt.leeway;
    let expires = now.saturating_add(u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX));
    let own = tx.tenant_id();
    let (tenant_id, user_id, role_name, aggregate) = match whose {
        Whose::User(user) => (own, user, String::new(), user),
        Whose::Role { id, name } => (own, 0, name, id),
        Whose::Tenant(tenant) => (tenant, 0, String::new(), tenant),
    };
    let event = AccessRevoked {
        tenant_id,
        user_id,
        role_name,
        not_before_time: Some(timestamp(now)),
        expire_time: Some(timestamp(expires)),
        reason: reason.to_owned(),
    };
    fusion_events::outbox::append(tx, SCHEMA, Event::new(EVENT_TYPE, aggregate, &event)).await?;
    Ok(())
}
