//! Finance settings: the shared service settings plus where the contexts it checks
//! references against live, soft-delete retention, and Xero (`FINANCE_XERO_*`,
//! `FINANCE_SECRET_KEY`, `FINANCE_WEBHOOK_ADDR`: see [`crate::xero::config`]).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | (shared) | | see `fusion_service::config` with prefix `FINANCE`, ports 50054/9004 |
//! | `FINANCE_IDENTITY_URL` | `http://127.0.0.1:50051` | identity: token keys and the users commissions are paid to |
//! | `FINANCE_CRM_URL` | `http://127.0.0.1:50053` | crm: the deals and contacts invoices and commissions are for |
//! | `FINANCE_PROPERTY_URL` | `http://127.0.0.1:50052` | property: the projects plans are for, and a won deal's lot's project |
//! | `FINANCE_SERVICE_CLIENT_SECRET`, else `SERVICE_CLIENT_SECRET` | none | finance's platform service account secret: its event consumers then act as finance's system account in each event's tenant |
//! | `FINANCE_SERVICE_CLIENT_ID`, else `SERVICE_CLIENT_ID` | `sa_platform_finance` | that account's client id |
//! | `FINANCE_MIGRATE_ON_START` | `true` | apply migrations at start when a migration URL is set |
//! | `FINANCE_PURGE_RETENTION_DAYS` | `30` | soft-deleted rows are removed after this long (needs the migration URL) |

use std::time::Duration;

use fusion_service::ConfigError;
use fusion_service::config::{ClientCredentials, ServiceConfig, parse_or, var};

use crate::xero::XeroConfig;

/// Everything the finance service reads at start.
#[derive(Clone, Debug)]
pub struct FinanceConfig {
    /// Addresses, database, JWT issuer/audience, page-token key.
    pub service: ServiceConfig,
    /// Identity's gRPC address.
    pub identity_url: String,
    /// Crm's gRPC address.
    pub crm_url: String,
    /// Property's gRPC address.
    pub property_url: String,
    /// Finance's platform service account, with which its event consumers act in each
    /// event's tenant; without it they act as nobody.
    pub service_credentials: Option<ClientCredentials>,
    /// Apply migrations at start when `service.migration_database_url` is set.
    pub migrate_on_start: bool,
    /// How long soft-deleted rows are kept.
    pub purge_retention: Duration,
    /// The Xero app, its limits, the webhook endpoint and the key tokens are sealed
    /// with; Xero is off without its client credentials and that key.
    pub xero: XeroConfig,
}

impl FinanceConfig {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let service = ServiceConfig::from_env("FINANCE", "finance", 50054, 9004)?;
        let mut config = Self::with_defaults(service);
        if let Some(url) = var("FINANCE_IDENTITY_URL") {
            config.identity_url = url;
        }
        if let Some(url) = var("FINANCE_CRM_URL") {
            config.crm_url = url;
        }
        if let Some(url) = var("FINANCE_PROPERTY_URL") {
            config.property_url = url;
        }
        config.service_credentials = ClientCredentials::from_env("FINANCE", "finance")?;
        config.migrate_on_start = parse_or("FINANCE_MIGRATE_ON_START", true)?;
        config.purge_retention =
            Duration::from_secs(parse_or::<u64>("FINANCE_PURGE_RETENTION_DAYS", 30)? * 86_400);
        config.xero = XeroConfig::from_env()?;
        Ok(config)
    }

    /// Defaults around a shared service configuration (tests build theirs this way).
    pub fn with_defaults(service: ServiceConfig) -> Self {
        Self {
            service,
            identity_url: "http://127.0.0.1:50051".to_owned(),
            crm_url: "http://127.0.0.1:50053".to_owned(),
            property_url: "http://127.0.0.1:50052".to_owned(),
            service_credentials: None,
            migrate_on_start: true,
            purge_retention: fusion_db::soft_delete::DEFAULT_RETENTION,
            xero: XeroConfig::unset(),
        }
    }
}
