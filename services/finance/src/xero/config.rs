//! Xero settings from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `FINANCE_XERO_API_URL` | `https://api.xero.com` | the Accounting API and `/connections` |
//! | `FINANCE_XERO_IDENTITY_URL` | `https://identity.xero.com` | the token endpoint (`/connect/token`) |
//! | `FINANCE_XERO_AUTHORIZE_URL` | `https://login.xero.com/identity/connect/authorize` | where a user consents to the connection |
//! | `FINANCE_XERO_CLIENT_ID`, `FINANCE_XERO_CLIENT_SECRET` | none | the Xero app; without them Xero is off |
//! | `FINANCE_XERO_REDIRECT_URI` | none | the callback registered with the app; Xero is off without it |
//! | `FINANCE_XERO_SCOPES` | `openid profile email accounting.transactions accounting.contacts offline_access` | scopes asked for (`offline_access` gives the refresh token) |
//! | `FINANCE_XERO_WEBHOOK_KEY` | none | the app's webhook signing key; the webhook endpoint runs only with it |
//! | `FINANCE_WEBHOOK_ADDR` | `0.0.0.0:8054` | where the webhook endpoint (`/webhooks/xero`) listens |
//! | `FINANCE_SECRET_KEY` | none | base64 of 32 bytes: the AES-256-GCM key for tokens at rest; Xero is off without it |
//! | `FINANCE_XERO_LIMIT_CONCURRENT` | `5` | calls in progress at once per Xero organisation |
//! | `FINANCE_XERO_LIMIT_PER_MINUTE` | `60` | calls per rolling minute per organisation |
//! | `FINANCE_XERO_LIMIT_PER_DAY` | `5000` | calls per rolling day per organisation |
//! | `FINANCE_XERO_POLL_SECONDS` | `300` | how often every connected organisation is asked for the invoices changed since the last poll (what a webhook missed) |
//! | `FINANCE_XERO_ACCOUNT_CODE` | `200` | the revenue account of the lines pushed (`200` is Sales in Xero's default chart of accounts); Xero wants one on every approved invoice's line |
//!
//! The limits default to Xero's documented ones; they are settings so that a test or a
//! benchmark against a fake with other limits can match them.

use std::net::SocketAddr;
use std::time::Duration;

use fusion_service::config::{ConfigError, var};

use super::crypto::TokenCipher;

/// The variables that must all be set for Xero to be on, in the order they are named.
const REQUIRED: [&str; 4] = [
    "FINANCE_XERO_CLIENT_ID",
    "FINANCE_XERO_CLIENT_SECRET",
    "FINANCE_XERO_REDIRECT_URI",
    "FINANCE_SECRET_KEY",
];

/// Everything the Xero integration is configured with.
#[derive(Clone, Debug)]
pub struct XeroConfig {
    /// Base of the Accounting API and `/connections`, without a trailing slash.
    pub api_url: String,
    /// Base of the token endpoint, without a trailing slash.
    pub identity_url: String,
    /// The consent page a user is sent to.
    pub authorize_url: String,
    /// The Xero app; `None` when any of its variables is unset.
    pub credentials: Option<XeroCredentials>,
    /// Space-separated scopes asked for at consent.
    pub scopes: String,
    /// The webhook signing key; `None` turns the webhook endpoint off.
    pub webhook_key: Option<String>,
    /// Where the webhook endpoint listens.
    pub webhook_addr: SocketAddr,
    /// The key tokens are sealed with at rest; `None` when `FINANCE_SECRET_KEY` is unset.
    pub token_cipher: Option<TokenCipher>,
    /// The limiter's figures per Xero organisation.
    pub limits: XeroLimits,
    /// How often Xero is polled for changed invoices.
    pub poll_interval: Duration,
    /// The revenue account code of every line pushed.
    pub account_code: String,
    /// Which of the required variables were unset.
    missing: Vec<&'static str>,
}

/// The Xero app this deployment is registered as.
#[derive(Clone)]
pub struct XeroCredentials {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// The callback URL registered with the app; the code exchange must name it again.
    pub redirect_uri: String,
}

impl std::fmt::Debug for XeroCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XeroCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<hidden>")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// How many calls one Xero organisation takes, and over which windows. Xero documents
/// 5 concurrent, 60 per minute and 5,000 per day per organisation; the window lengths
/// are fields so that tests can shrink a minute to a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XeroLimits {
    /// Calls in progress at once.
    pub concurrent: usize,
    /// Calls started within any `minute`.
    pub per_minute: usize,
    /// Calls started within any `day`.
    pub per_day: usize,
    /// The length of the short window (a minute).
    pub minute: Duration,
    /// The length of the long window (a day).
    pub day: Duration,
    /// Attempts at one call that Xero answers 429, each after its `Retry-After`, before
    /// the 429 is returned to the caller.
    pub attempts: u32,
}

impl Default for XeroLimits {
    fn default() -> Self {
        Self {
            concurrent: 5,
            per_minute: 60,
            per_day: 5_000,
            minute: Duration::from_secs(60),
            day: Duration::from_secs(24 * 3600),
            attempts: 4,
        }
    }
}

impl XeroConfig {
    /// Reads the settings from the process environment (see the module docs).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(var)
    }

    /// The settings with no variable set: Xero off, every default in place.
    pub fn unset() -> Self {
        Self::from_lookup(|_| None).expect("the defaults are valid settings")
    }

    /// Reads the settings through `lookup` (a variable's value if set and not empty),
    /// so that tests need not change the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let url = |name: &str, default: &str| {
            lookup(name)
                .unwrap_or_else(|| default.to_owned())
                .trim_end_matches('/')
                .to_owned()
        };
        let credentials = match (
            lookup("FINANCE_XERO_CLIENT_ID"),
            lookup("FINANCE_XERO_CLIENT_SECRET"),
            lookup("FINANCE_XERO_REDIRECT_URI"),
        ) {
            (Some(client_id), Some(client_secret), Some(redirect_uri)) => Some(XeroCredentials {
                client_id,
                client_secret,
                redirect_uri,
            }),
            _ => None,
        };
        let token_cipher = lookup("FINANCE_SECRET_KEY")
            .map(|key| {
                TokenCipher::from_base64(&key).map_err(|e| ConfigError::Invalid {
                    name: "FINANCE_SECRET_KEY".into(),
                    value: "<hidden>".into(),
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        let missing = REQUIRED
            .into_iter()
            .filter(|name| lookup(name).is_none())
            .collect();
        let defaults = XeroLimits::default();
        let number = |name: &str, default: usize| -> Result<usize, ConfigError> {
            let value = parse_with(&lookup, name, default)?;
            if value == 0 {
                return Err(ConfigError::Invalid {
                    name: name.to_owned(),
                    value: "0".into(),
                    reason: "must be at least 1".into(),
                });
            }
            Ok(value)
        };
        Ok(Self {
            api_url: url("FINANCE_XERO_API_URL", "https://api.xero.com"),
            identity_url: url("FINANCE_XERO_IDENTITY_URL", "https://identity.xero.com"),
            authorize_url: url(
                "FINANCE_XERO_AUTHORIZE_URL",
                "https://login.xero.com/identity/connect/authorize",
            ),
            credentials,
            scopes: lookup("FINANCE_XERO_SCOPES").unwrap_or_else(|| {
                "openid profile email accounting.transactions accounting.contacts offline_access"
                    .to_owned()
            }),
            webhook_key: lookup("FINANCE_XERO_WEBHOOK_KEY"),
            webhook_addr: parse_with(
                &lookup,
                "FINANCE_WEBHOOK_ADDR",
                SocketAddr::from(([0, 0, 0, 0], 8054)),
            )?,
            token_cipher,
            limits: XeroLimits {
                concurrent: number("FINANCE_XERO_LIMIT_CONCURRENT", defaults.concurrent)?,
                per_minute: number("FINANCE_XERO_LIMIT_PER_MINUTE", defaults.per_minute)?,
                per_day: number("FINANCE_XERO_LIMIT_PER_DAY", defaults.per_day)?,
                ..defaults
            },
            poll_interval: Duration::from_secs(
                number("FINANCE_XERO_POLL_SECONDS", 300)?
                    .try_into()
                    .unwrap_or(u64::MAX),
            ),
            account_code: lookup("FINANCE_XERO_ACCOUNT_CODE").unwrap_or_else(|| "200".to_owned()),
            missing,
        })
    }

    /// The variables that must be set before Xero can be used, empty when none is
    /// missing; a Xero method names them in its FAILED_PRECONDITION.
    pub fn missing_variables(&self) -> &[&'static str] {
        &self.missing
    }
}

/// `name` through `lookup`, parsed, or `default` when unset.
fn parse_with<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match lookup(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name: name.to_owned(),
                value,
                reason: e.to_string(),
            }),
    }
}
