//! CRM settings: the shared service settings plus where the contexts it checks
//! references against live, soft-delete retention and the phone-number country.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | (shared) | | see `fusion_service::config` with prefix `CRM`, ports 50053/9003 |
//! | `CRM_IDENTITY_URL` | `http://127.0.0.1:50051` | identity: token keys (`GetJwks`) and the users leads, deals and tasks are assigned to |
//! | `CRM_SERVICE_CLIENT_SECRET`, else `SERVICE_CLIENT_SECRET` | none | crm's platform service account secret: its event consumers then act, and write audit fields, as crm's system account in each event's tenant (see `fusion_service::config::ClientCredentials`) |
//! | `CRM_SERVICE_CLIENT_ID`, else `SERVICE_CLIENT_ID` | `sa_platform_crm` | that account's client id |
//! | `CRM_PROPERTY_URL` | `http://127.0.0.1:50052` | property: the lots deals are for, and the projects, stages and lots notes and tasks are about |
//! | `CRM_MIGRATE_ON_START` | `true` | apply migrations at start when a migration URL is set |
//! | `CRM_PURGE_RETENTION_DAYS` | `30` | soft-deleted rows are removed after this long (needs the migration URL) |
//! | `CRM_DEFAULT_COUNTRY` | `AU` | ISO 3166 code phone numbers without a country code are read in, unless the record names its country |
//! | `CRM_EVENTS_TIME_ZONE` | `UTC` | the IANA zone crm's event consumers take as a tenant's "today" (a task due today) when they run without service credentials; with them, identity gives each tenant's own zone with the service token |

use std::time::Duration;

use fusion_service::ConfigError;
use fusion_service::config::{ClientCredentials, ServiceConfig, parse_or, var};

/// Everything the crm service reads at start.
#[derive(Clone, Debug)]
pub struct CrmConfig {
    /// Addresses, database, JWT issuer/audience, page-token key.
    pub service: ServiceConfig,
    /// Identity's gRPC address.
    pub identity_url: String,
    /// Crm's platform service account, with which its event consumers act in each
    /// event's tenant; without it they act as nobody.
    pub service_credentials: Option<ClientCredentials>,
    /// Property's gRPC address.
    pub property_url: String,
    /// Apply migrations at start when `service.migration_database_url` is set.
    pub migrate_on_start: bool,
    /// How long soft-deleted rows are kept.
    pub purge_retention: Duration,
    /// Country phone numbers are read in when neither they nor their record say.
    pub default_country: phonenumber::country::Id,
    /// The zone event consumers compute a tenant's "today" in. A request's "today"
    /// comes from its token (`TenantContext::today`); a consumer takes the tenant's from
    /// its service token, and this one (UTC by default, the zone identity gives a
    /// tenant that names none) only when it runs without service credentials.
    pub events_time_zone: chrono_tz::Tz,
}

impl CrmConfig {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let service = ServiceConfig::from_env("CRM", "crm", 50053, 9003)?;
        let mut config = Self::with_defaults(service);
        if let Some(url) = var("CRM_IDENTITY_URL") {
            config.identity_url = url;
        }
        config.service_credentials = ClientCredentials::from_env("CRM", "crm")?;
        if let Some(url) = var("CRM_PROPERTY_URL") {
            config.property_url = url;
        }
        config.migrate_on_start = parse_or("CRM_MIGRATE_ON_START", true)?;
        config.purge_retention =
            Duration::from_secs(parse_or::<u64>("CRM_PURGE_RETENTION_DAYS", 30)? * 86_400);
        if let Some(code) = var("CRM_DEFAULT_COUNTRY") {
            config.default_country =
                code.trim()
                    .to_uppercase()
                    .parse()
                    .map_err(|_| ConfigError::Invalid {
                        name: "CRM_DEFAULT_COUNTRY".to_owned(),
                        value: code.clone(),
                        reason: "not an ISO 3166 country code such as AU".to_owned(),
                    })?;
        }
        if let Some(zone) = var("CRM_EVENTS_TIME_ZONE") {
            config.events_time_zone = zone.trim().parse().map_err(|_| ConfigError::Invalid {
                name: "CRM_EVENTS_TIME_ZONE".to_owned(),
                value: zone.clone(),
                reason: "not an IANA time zone such as Australia/Sydney".to_owned(),
            })?;
        }
        Ok(config)
    }

    /// Defaults around a shared service configuration (tests build theirs this way).
    pub fn with_defaults(service: ServiceConfig) -> Self {
        Self {
            service,
            identity_url: "http://127.0.0.1:50051".to_owned(),
            service_credentials: None,
            property_url: "http://127.0.0.1:50052".to_owned(),
            migrate_on_start: true,
            purge_retention: fusion_db::soft_delete::DEFAULT_RETENTION,
            default_country: phonenumber::country::Id::AU,
            events_time_zone: chrono_tz::Tz::UTC,
        }
    }
}
