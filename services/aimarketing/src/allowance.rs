//! A tenant's monthly token allowance, from its plan in identity.
//!
//! The allowance is the plan feature `ai_tokens_per_month=<tokens>` (request and reply
//! tokens together, per calendar month in the tenant's time zone); `=0` allows none.
//! A tenant without a plan, or whose plan has no such feature, has no limit.
//!
//! A user sending a message may not read the tenant or its plan (the `marketing` role
//! holds no identity permission), so the plan is read with ai-marketing's own
//! credentials: its platform service account's token for the tenant's system account
//! (`fusion_events::ServiceCredentials`, as event consumers act), which holds
//! `identity.tenants.read` and `identity.plans.read`. Answers are kept for
//! [`FRESH_FOR`] per tenant, so a conversation does not ask identity at every message;
//! a plan change applies within that time. Without service credentials there is
//! nothing to read the plan with: no limit is enforced, and the service says so at
//! start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tonic::Request;
use tonic::transport::Channel;

use fusion_events::ServiceCredentials;
use fusion_proto::identity::v1 as identity;
use fusion_proto::identity::v1::{
    plan_service_client::PlanServiceClient, tenant_service_client::TenantServiceClient,
};

use crate::error::AiMarketingError;

/// The plan feature naming the allowance.
pub const FEATURE: &str = "ai_tokens_per_month";

/// How long a tenant's allowance is used before its plan is read again.
pub const FRESH_FOR: Duration = Duration::from_secs(60);

/// The allowance a plan's `features` state: `Some(tokens)` from
/// `ai_tokens_per_month=<tokens>`, `None` (no limit) when it states none. A malformed
/// value allows nothing rather than everything.
pub fn of_features(features: &[String]) -> Option<i64> {
    features.iter().find_map(|feature| {
        let (name, value) = feature.split_once(['=', ':'])?;
        (name.trim() == FEATURE).then(|| value.trim().replace('_', "").parse().unwrap_or(0))
    })
}

/// A tenant's allowance as read, and when.
type Read = (Instant, Option<i64>);

/// Reads and keeps tenants' allowances; cheap to clone.
#[derive(Clone, Debug)]
pub struct Allowances {
    source: Option<(ServiceCredentials, Channel)>,
    cache: Arc<Mutex<HashMap<i64, Read>>>,
}

impl Allowances {
    /// Allowances read from identity over `identity` with `credentials`; with none, no
    /// tenant has a limit.
    pub fn new(credentials: Option<ServiceCredentials>, identity: Channel) -> Self {
        Self {
            source: credentials.map(|c| (c, identity)),
            cache: Arc::default(),
        }
    }

    /// Whether allowances are read at all.
    pub fn enforced(&self) -> bool {
        self.source.is_some()
    }

    /// Tenant `tenant_id`'s monthly allowance; `None` when it has no limit.
    pub async fn of(&self, tenant_id: i64) -> Result<Option<i64>, AiMarketingError> {
        let Some((credentials, channel)) = &self.source else {
            return Ok(None);
        };
        if let Some((read_at, allowance)) = self.cached(tenant_id)
            && read_at.elapsed() < FRESH_FOR
        {
            return Ok(allowance);
        }
        let allowance = read(credentials, channel, tenant_id).await?;
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant_id, (Instant::now(), allowance));
        Ok(allowance)
    }

    fn cached(&self, tenant_id: i64) -> Option<Read> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tenant_id)
            .copied()
    }
}

/// The tenant's plan's allowance, read as ai-marketing's system account in the tenant.
async fn read(
    credentials: &ServiceCredentials,
    channel: &Channel,
    tenant_id: i64,
) -> Result<Option<i64>, AiMarketingError> {
    let unavailable = |why: String| {
        tracing::warn!(
            tenant.id = tenant_id,
            why,
            "the tenant's plan could not be read"
        );
        AiMarketingError::OwnerUnavailable {
            owner: "identity",
            field: FEATURE.to_owned(),
        }
    };
    let caller = credentials
        .for_tenant(tenant_id)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let tenant = TenantServiceClient::new(channel.clone())
        .get_tenant(signed(
            identity::GetTenantRequest { id: tenant_id },
            &caller.access_token,
            tenant_id,
        ))
        .await
        .map_err(|s| unavailable(s.to_string()))?
        .into_inner();
    if tenant.plan_id <= 0 {
        return Ok(None);
    }
    let plan = PlanServiceClient::new(channel.clone())
        .get_plan(signed(
            identity::GetPlanRequest { id: tenant.plan_id },
            &caller.access_token,
            tenant_id,
        ))
        .await
        .map_err(|s| unavailable(s.to_string()))?
        .into_inner();
    Ok(of_features(&plan.features))
}

/// `message` as the system account's call in `tenant_id`.
fn signed<T>(message: T, token: &str, tenant_id: i64) -> Request<T> {
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    if let Ok(bearer) = format!("Bearer {token}").parse() {
        metadata.insert("authorization", bearer);
    }
    if let Ok(tenant) = tenant_id.to_string().parse() {
        metadata.insert("x-tenant-id", tenant);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(list: &[&str]) -> Vec<String> {
        list.iter().map(|f| (*f).to_owned()).collect()
    }

    #[test]
    fn the_allowance_is_the_plans_feature() {
        assert_eq!(of_features(&features(&[])), None);
        assert_eq!(of_features(&features(&["crm", "reports"])), None);
        assert_eq!(
            of_features(&features(&["crm", "ai_tokens_per_month=250000"])),
            Some(250_000)
        );
        assert_eq!(
            of_features(&features(&["ai_tokens_per_month: 1_000_000"])),
            Some(1_000_000)
        );
        assert_eq!(of_features(&features(&["ai_tokens_per_month=0"])), Some(0));
        // Malformed: nothing rather than everything.
        assert_eq!(
            of_features(&features(&["ai_tokens_per_month=lots"])),
            Some(0)
        );
        // Another feature merely starting with the name is not it.
        assert_eq!(
            of_features(&features(&["ai_tokens_per_month_extra=5"])),
            None
        );
    }
}
