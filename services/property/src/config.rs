//! Property settings: the shared service settings plus where identity's keys come
//! from, the housekeeping cadence and soft-delete retention.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | (shared) | | see `fusion_service::config` with prefix `PROPERTY`, ports 50052/9002 |
//! | `PROPERTY_IDENTITY_URL` | `http://127.0.0.1:50051` | identity, for the token-verification keys (`GetJwks`) |
//! | `PROPERTY_MIGRATE_ON_START` | `true` | apply migrations at start when a migration URL is set |
//! | `PROPERTY_HOUSEKEEPING_SECONDS` | `15` | how often lapsed holds are released and due prices applied (needs the migration URL) |
//! | `PROPERTY_PURGE_RETENTION_DAYS` | `30` | soft-deleted rows are removed after this long (needs the migration URL) |

use std::time::Duration;

use fusion_service::ConfigError;
use fusion_service::config::{ServiceConfig, parse_or, var};

/// Everything the property service reads at start.
#[derive(Clone, Debug)]
pub struct PropertyConfig {
    /// Addresses, database, JWT issuer/audience, page-token key.
    pub service: ServiceConfig,
    /// Identity's gRPC address, for `GetJwks`.
    pub identity_url: String,
    /// Apply migrations at start when `service.migration_database_url` is set.
    pub migrate_on_start: bool,
    /// How often the housekeeping job runs.
    pub housekeeping_interval: Duration,
    /// How long soft-deleted rows are kept.
    pub purge_retention: Duration,
}

impl PropertyConfig {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let service = ServiceConfig::from_env("PROPERTY", "property", 50052, 9002)?;
        let mut config = Self::with_defaults(service);
        if let Some(url) = var("PROPERTY_IDENTITY_URL") {
            config.identity_url = url;
        }
        config.migrate_on_start = parse_or("PROPERTY_MIGRATE_ON_START", true)?;
        config.housekeeping_interval =
            Duration::from_secs(parse_or("PROPERTY_HOUSEKEEPING_SECONDS", 15)?);
        config.purge_retention =
            Duration::from_secs(parse_or::<u64>("PROPERTY_PURGE_RETENTION_DAYS", 30)? * 86_400);
        Ok(config)
    }

    /// Defaults around a shared service configuration (tests build theirs this way).
    pub fn with_defaults(service: ServiceConfig) -> Self {
        Self {
            service,
            identity_url: "http://127.0.0.1:50051".to_owned(),
            migrate_on_start: true,
            housekeeping_interval: Duration::from_secs(15),
            purge_retention: fusion_db::soft_delete::DEFAULT_RETENTION,
        }
    }
}
