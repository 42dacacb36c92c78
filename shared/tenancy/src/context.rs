//! The verified caller, as handlers see it.

use std::collections::BTreeSet;

use tonic::Status;

use fusion_proto::errors;

tokio::task_local! {
    static CURRENT: TenantContext;
}

/// Who is calling, verified by [`crate::TenantLayer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantContext {
    /// The tenant every statement of this request is bound to.
    pub tenant_id: i64,
    /// The calling user: a person, or a service account when `service_account` is set
    /// (its id is a user id all the same, so audit fields name it).
    pub user_id: i64,
    /// The user's role names.
    pub roles: Vec<String>,
    /// The user's permissions.
    pub permissions: BTreeSet<String>,
    /// The request id, echoed in logs and forwarded to other services.
    pub request_id: Option<String>,
    /// The raw bearer token, forwarded on calls to other services.
    pub bearer: Option<String>,
    /// The tenant's IANA time zone, from the token; UTC when the token names none.
    pub time_zone: chrono_tz::Tz,
    /// Whether the caller is a service account (the token's `svc` claim).
    pub service_account: bool,
}

impl TenantContext {
    /// Whether the caller holds `permission`.
    pub fn has(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }

    /// PERMISSION_DENIED naming `permission` unless the caller holds it.
    pub fn require(&self, permission: &str) -> Result<(), Status> {
        if self.has(permission) {
            Ok(())
        } else {
            Err(errors::permission_denied(permission))
        }
    }

    /// The context the server layer attached to this request; UNAUTHENTICATED if the
    /// request did not pass through it (a public method, or a misconfigured server).
    pub fn from_request<T>(request: &tonic::Request<T>) -> Result<TenantContext, Status> {
        request
            .extensions()
            .get::<TenantContext>()
            .cloned()
            .ok_or_else(|| errors::unauthenticated("TOKEN_MISSING", "authentication required"))
    }

    /// The zone a token's `tz` claim names; UTC when it names none or one this build
    /// does not know (identity checks zones when they are set, so that means a token
    /// from a newer zone database).
    pub fn zone_of(claim: Option<&str>) -> chrono_tz::Tz {
        claim
            .and_then(|name| name.parse().ok())
            .unwrap_or(chrono_tz::Tz::UTC)
    }

    /// Today's date in the tenant's time zone: the default for every "today" date
    /// (a close date, an invoice date), so a Sydney deal won at 09:00 is won today,
    /// not on yesterday's UTC date.
    pub fn today(&self) -> chrono::NaiveDate {
        self.date_at(chrono::Utc::now())
    }

    /// The tenant's calendar date at `instant`.
    pub fn date_at(&self, instant: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
        instant.with_timezone(&self.time_zone).date_naive()
    }

    /// The context of the request being handled on this task, if any.
    pub fn current() -> Option<TenantContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `fut` with `self` as [`TenantContext::current`].
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_zone(claim: Option<&str>) -> TenantContext {
        TenantContext {
            tenant_id: 1,
            user_id: 1,
            roles: Vec::new(),
            permissions: BTreeSet::new(),
            request_id: None,
            bearer: None,
            time_zone: TenantContext::zone_of(claim),
            service_account: false,
        }
    }

    #[test]
    fn a_token_without_a_known_zone_means_utc() {
        assert_eq!(TenantContext::zone_of(None), chrono_tz::Tz::UTC);
        assert_eq!(
            TenantContext::zone_of(Some("Mars/Olympus_Mons")),
            chrono_tz::Tz::UTC
        );
        assert_eq!(
            TenantContext::zone_of(Some("Australia/Sydney")),
            chrono_tz::Tz::Australia__Sydney
        );
    }

    #[test]
    fn today_is_the_tenants_calendar_date() {
        // 09:00 in Sydney (UTC+11 in November) is still the previous day in UTC.
        let instant = "2026-11-28T22:00:00Z".parse().unwrap();
        let sydney = in_zone(Some("Australia/Sydney"));
        assert_eq!(sydney.date_at(instant).to_string(), "2026-11-29");
        assert_eq!(in_zone(None).date_at(instant).to_string(), "2026-11-28");
        let los_angeles = in_zone(Some("America/Los_Angeles"));
        assert_eq!(los_angeles.date_at(instant).to_string(), "2026-11-28");
    }
}
