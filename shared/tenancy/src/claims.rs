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
        }
    }

    /// The same claims carrying the tenant's IANA time zone.
    pub fn with_time_zone(mut self, time_zone: impl Into<String>) -> Self {
        self.tz = Some(time_zone.into());
        self
    }
}
