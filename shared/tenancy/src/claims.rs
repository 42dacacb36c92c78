//! Access-token claims and the settings they are checked against.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The claims of a Fusion access token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Issuer: the identity service.
    pub iss: String,
    /// Audience: the Fusion API.
    pub aud: String,
    /// The user id, as a string (JWT convention).
    pub sub: String,
    /// The tenant id.
    pub tid: i64,
    /// The user's role names.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The union of the roles' permissions at issue time.
    #[serde(default)]
    pub perms: Vec<String>,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Issued at, in milliseconds since the epoch: a revocation at a given instant
    /// refuses the tokens issued before it and not those issued a moment after it (a
    /// logout and a new login within the same second). Absent in tokens issued before
    /// the claim existed, which read as issued at the start of their `iat` second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat_ms: Option<u64>,
    /// Not before.
    pub nbf: u64,
    /// Unique token id.
    pub jti: String,
    /// The tenant's IANA time zone (e.g. `Australia/Sydney`) at issue time: default
    /// dates ("today") are computed in it. Absent in tokens that carry no tenant zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// Whether the subject is a service account (a machine caller, from
    /// `IssueServiceToken`) rather than a person. Absent (false) in a person's token,
    /// so tokens issued before the claim existed read as a person's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub svc: bool,
    /// From when (seconds since the epoch) the tenant is read-only: an expired trial.
    /// Absent while the tenant may write, so tokens issued before the claim existed
    /// read as writable. The services' token layer refuses writes once it has passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ro_at: Option<u64>,
}

/// Who issues tokens, for whom, and how much clock skew is forgiven.
#[derive(Clone, Debug)]
pub struct JwtConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// Clock skew forgiven on `exp` and `nbf`.
    pub leeway: Duration,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            issuer: "fusion-identity".to_owned(),
            audience: "fusion-api".to_owned(),
            leeway: Duration::from_secs(30),
        }
    }
}

impl Claims {
    /// Claims for `user_id` of `tenant_id`, valid from now for `ttl`.
    pub fn new(
        cfg: &JwtConfig,
        tenant_id: i64,
        user_id: i64,
        roles: Vec<String>,
        perms: Vec<String>,
        ttl: Duration,
    ) -> Self {
        let now_ms = crate::revocation::now_ms();
        let now = now_ms / 1000;
        Self {
            iss: cfg.issuer.clone(),
            aud: cfg.audience.clone(),
            sub: user_id.to_string(),
            tid: tenant_id,
            roles,
            perms,
            exp: now + ttl.as_secs(),
            iat: now,
            iat_ms: Some(now_ms),
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            tz: None,
            svc: false,
            ro_at: None,
        }
    }

    /// The same claims carrying the tenant's IANA time zone.
    pub fn with_time_zone(mut self, time_zone: impl Into<String>) -> Self {
        self.tz = Some(time_zone.into());
        self
    }

    /// The same claims saying the tenant is read-only from `at` (seconds since the
    /// epoch; in the past for a tenant that is read-only already).
    pub fn read_only_from(mut self, at: Option<u64>) -> Self {
        self.ro_at = at;
        self
    }

    /// Whether the tenant was read-only at `now` (seconds since the epoch).
    pub fn read_only_at(&self, now: u64) -> bool {
        self.ro_at.is_some_and(|at| at <= now)
    }

    /// When the token was issued, in milliseconds since the epoch (the start of its
    /// `iat` second for a token without `iat_ms`).
    pub fn issued_at_ms(&self) -> u64 {
        self.iat_ms
            .filter(|ms| ms / 1000 == self.iat)
            .unwrap_or(self.iat.saturating_mul(1000))
    }

    /// The same claims marking the subject as a service account.
    pub fn for_service_account(mut self) -> Self {
        self.svc = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Claims, JwtConfig};

    fn person() -> Claims {
        Claims::new(
            &JwtConfig::default(),
            1,
            2,
            Vec::new(),
            Vec::new(),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn a_persons_token_carries_no_service_claim_and_an_old_token_reads_as_a_person() {
        let json = serde_json::to_value(person()).unwrap();
        assert!(json.get("svc").is_none(), "{json}");
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("tz");
        let parsed: Claims = serde_json::from_value(old).unwrap();
        assert!(!parsed.svc);
    }

    #[test]
    fn a_writable_tenants_token_carries_no_read_only_claim() {
        let json = serde_json::to_value(person()).unwrap();
        assert!(json.get("ro_at").is_none(), "{json}");
        let claims = person().read_only_from(Some(100));
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["ro_at"], serde_json::json!(100));
        let parsed: Claims = serde_json::from_value(json).unwrap();
        assert!(!parsed.read_only_at(99) && parsed.read_only_at(100));
        assert!(!person().read_only_at(u64::MAX));
    }

    #[test]
    fn a_service_accounts_token_says_so() {
        let claims = person().for_service_account();
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["svc"], serde_json::json!(true));
        let parsed: Claims = serde_json::from_value(json).unwrap();
        assert!(parsed.svc);
    }
}
