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
        let now = jsonwebtoken::get_current_timestamp();
        Self {
            iss: cfg.issuer.clone(),
            aud: cfg.audience.clone(),
            sub: user_id.to_string(),
            tid: tenant_id,
            roles,
            perms,
            exp: now + ttl.as_secs(),
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            tz: None,
            svc: false,
        }
    }

    /// The same claims carrying the tenant's IANA time zone.
    pub fn with_time_zone(mut self, time_zone: impl Into<String>) -> Self {
        self.tz = Some(time_zone.into());
        self
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
    fn a_service_accounts_token_says_so() {
        let claims = person().for_service_account();
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["svc"], serde_json::json!(true));
        let parsed: Claims = serde_json::from_value(json).unwrap();
        assert!(parsed.svc);
    }
}
