//! Identity settings: the shared service settings plus token lifetimes, login
//! throttling and the platform administrator bootstrap.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | (shared) | | see `fusion_service::config` with prefix `IDENTITY`, ports 50051/9001 |
//! | `IDENTITY_ACCESS_TOKEN_TTL_SECONDS` | `900` | access-token lifetime |
//! | `IDENTITY_REFRESH_TOKEN_TTL_SECONDS` | `2592000` | refresh-token lifetime (30 days) |
//! | `IDENTITY_LOGIN_MAX_FAILURES_PER_ACCOUNT` | `5` | failures per window before an account locks |
//! | `IDENTITY_LOGIN_MAX_FAILURES_PER_SOURCE` | `20` | failures per window before a source address locks |
//! | `IDENTITY_LOGIN_WINDOW_SECONDS` | `900` | failure-counting window |
//! | `IDENTITY_LOGIN_LOCKOUT_SECONDS` | `900` | first lockout; doubles on each repeat |
//! | `IDENTITY_MIGRATE_ON_START` | `true` | apply migrations at start when a migration URL is set |
//! | `IDENTITY_PURGE_RETENTION_DAYS` | `30` | soft-deleted users and roles are removed after this long (needs the migration URL) |

use std::time::Duration;

use fusion_service::ConfigError;
use fusion_service::config::{ServiceConfig, parse_or};

/// How many failed logins lock an account or a source, and for how long.
#[derive(Clone, Debug)]
pub struct ThrottleConfig {
    /// Failures per window before the account locks.
    pub max_failures_per_account: i32,
    /// Failures per window before the source address locks.
    pub max_failures_per_source: i32,
    /// The counting window.
    pub window: Duration,
    /// The first lockout; each further lockout in a row doubles it (capped at a day).
    pub lockout: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_source: 20,
            window: Duration::from_secs(900),
            lockout: Duration::from_secs(900),
        }
    }
}

/// Everything the identity service reads at start.
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    /// Addresses, database, JWT issuer/audience, page-token key.
    pub service: ServiceConfig,
    /// Access-token lifetime.
    pub access_token_ttl: Duration,
    /// Refresh-token lifetime.
    pub refresh_token_ttl: Duration,
    /// Login throttling.
    pub throttle: ThrottleConfig,
    /// Apply migrations at start when `service.migration_database_url` is set.
    pub migrate_on_start: bool,
    /// How long soft-deleted rows are kept before the purge job removes them.
    pub purge_retention: Duration,
}

impl IdentityConfig {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let service = ServiceConfig::from_env("IDENTITY", "identity", 50051, 9001)?;
        Self::with_defaults(service).read_env()
    }

    /// Defaults around a shared service configuration (tests build theirs this way).
    pub fn with_defaults(service: ServiceConfig) -> Self {
        Self {
            service,
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            throttle: ThrottleConfig::default(),
            migrate_on_start: true,
            purge_retention: fusion_db::soft_delete::DEFAULT_RETENTION,
        }
    }

    fn read_env(mut self) -> Result<Self, ConfigError> {
        let secs = |name: &str, default: Duration| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(parse_or(name, default.as_secs())?))
        };
        self.access_token_ttl = secs("IDENTITY_ACCESS_TOKEN_TTL_SECONDS", self.access_token_ttl)?;
        self.refresh_token_ttl =
            secs("IDENTITY_REFRESH_TOKEN_TTL_SECONDS", self.refresh_token_ttl)?;
        self.throttle.max_failures_per_account = parse_or(
            "IDENTITY_LOGIN_MAX_FAILURES_PER_ACCOUNT",
            self.throttle.max_failures_per_account,
        )?;
        self.throttle.max_failures_per_source = parse_or(
            "IDENTITY_LOGIN_MAX_FAILURES_PER_SOURCE",
            self.throttle.max_failures_per_source,
        )?;
        self.throttle.window = secs("IDENTITY_LOGIN_WINDOW_SECONDS", self.throttle.window)?;
        self.throttle.lockout = secs("IDENTITY_LOGIN_LOCKOUT_SECONDS", self.throttle.lockout)?;
        self.migrate_on_start = parse_or("IDENTITY_MIGRATE_ON_START", self.migrate_on_start)?;
        let days = parse_or(
            "IDENTITY_PURGE_RETENTION_DAYS",
            self.purge_retention.as_secs() / 86_400,
        )?;
        self.purge_retention = Duration::from_secs(days * 86_400);
        Ok(self)
    }
}
