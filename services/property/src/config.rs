//! Property settings: the shared service settings plus where identity's keys come
//! from, the housekeeping cadence and soft-delete retention.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | (shared) | | see `fusion_service::config` with prefix `PROPERTY`, ports 50052/9002 |
//! | `PROPERTY_CRM_URL`, else `CRM_URL` | `http://127.0.0.1:50053` | crm, asked as the caller whether the deal a hold or reservation is for is open (`HoldLot`/`ReserveLot` `deal_id`) |
//! | `PROPERTY_IDENTITY_URL` | `http://127.0.0.1:50051` | identity, for the token-verification keys (`GetJwks`) and the service tokens of the event consumers |
//! | `PROPERTY_SERVICE_CLIENT_SECRET`, else `SERVICE_CLIENT_SECRET` | none | property's platform service account secret: its event consumers then act, and write audit fields, as property's system account in each event's tenant (see `fusion_service::config::ClientCredentials`) |
//! | `PROPERTY_SERVICE_CLIENT_ID`, else `SERVICE_CLIENT_ID` | `sa_platform_property` | that account's client id |
//! | `PROPERTY_MIGRATE_ON_START` | `true` | apply migrations at start when a migration URL is set |
//! | `PROPERTY_HOUSEKEEPING_SECONDS` | `15` | how often lapsed holds are released and due prices applied (needs the migration URL) |
//! | `PROPERTY_PURGE_RETENTION_DAYS` | `30` | soft-deleted rows are removed after this long (needs the migration URL) |
//! | `PROPERTY_MEDIA_STORE` | `local` | where media bytes live: `local` (a directory) or `s3` (an S3-compatible bucket) |
//! | `PROPERTY_MEDIA_DIR` | `data/media` | the directory of the `local` store (created if missing) |
//! | `PROPERTY_MEDIA_S3_BUCKET` | required for `s3` | the bucket |
//! | `PROPERTY_MEDIA_S3_ENDPOINT` | AWS | endpoint of another S3-compatible store, e.g. `http://minio:9000` |
//! | `PROPERTY_MEDIA_S3_REGION` | `us-east-1` | the region |
//! | `PROPERTY_MEDIA_S3_ACCESS_KEY_ID`, `PROPERTY_MEDIA_S3_SECRET_ACCESS_KEY` | from `AWS_*` | credentials |
//! | `PROPERTY_MEDIA_MAX_BYTES` | `104857600` (100 MiB) | the largest file UploadMedia accepts |

use std::time::Duration;

use fusion_service::ConfigError;
use fusion_service::config::{ClientCredentials, ServiceConfig, parse_or, var};

use crate::media_store::StoreConfig;

/// Everything the property service reads at start.
#[derive(Clone, Debug)]
pub struct PropertyConfig {
    /// Addresses, database, JWT issuer/audience, page-token key.
    pub service: ServiceConfig,
    /// Identity's gRPC address, for `GetJwks` and the consumers' service tokens.
    pub identity_url: String,
    /// Crm's gRPC address, for the deals holds and reservations are for.
    pub crm_url: String,
    /// Property's platform service account, with which its event consumers act in
    /// each event's tenant; without it they act as nobody (audit fields stay empty).
    pub service_credentials: Option<ClientCredentials>,
    /// Apply migrations at start when `service.migration_database_url` is set.
    pub migrate_on_start: bool,
    /// How often the housekeeping job runs.
    pub housekeeping_interval: Duration,
    /// How long soft-deleted rows are kept.
    pub purge_retention: Duration,
    /// Where media bytes are stored.
    pub media_store: StoreConfig,
    /// The largest file UploadMedia accepts, in bytes.
    pub media_max_bytes: u64,
}

/// The largest `PROPERTY_MEDIA_MAX_BYTES` (a file's size is kept as a 32-bit integer).
const MEDIA_MAX_BYTES_LIMIT: u64 = i32::MAX as u64;

impl PropertyConfig {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let service = ServiceConfig::from_env("PROPERTY", "property", 50052, 9002)?;
        let mut config = Self::with_defaults(service);
        if let Some(url) = var("PROPERTY_IDENTITY_URL") {
            config.identity_url = url;
        }
        if let Some(url) = var("PROPERTY_CRM_URL").or_else(|| var("CRM_URL")) {
            config.crm_url = url;
        }
        config.service_credentials = ClientCredentials::from_env("PROPERTY", "property")?;
        config.migrate_on_start = parse_or("PROPERTY_MIGRATE_ON_START", true)?;
        config.housekeeping_interval =
            Duration::from_secs(parse_or("PROPERTY_HOUSEKEEPING_SECONDS", 15)?);
        config.purge_retention =
            Duration::from_secs(parse_or::<u64>("PROPERTY_PURGE_RETENTION_DAYS", 30)? * 86_400);
        config.media_store = media_store_from_env()?;
        config.media_max_bytes = parse_or("PROPERTY_MEDIA_MAX_BYTES", config.media_max_bytes)?;
        if config.media_max_bytes == 0 || config.media_max_bytes > MEDIA_MAX_BYTES_LIMIT {
            return Err(ConfigError::Invalid {
                name: "PROPERTY_MEDIA_MAX_BYTES".to_owned(),
                value: config.media_max_bytes.to_string(),
                reason: format!("must be between 1 and {MEDIA_MAX_BYTES_LIMIT}"),
            });
        }
        Ok(config)
    }

    /// Defaults around a shared service configuration (tests build theirs this way).
    pub fn with_defaults(service: ServiceConfig) -> Self {
        Self {
            service,
            identity_url: "http://127.0.0.1:50051".to_owned(),
            crm_url: "http://127.0.0.1:50053".to_owned(),
            service_credentials: None,
            migrate_on_start: true,
            housekeeping_interval: Duration::from_secs(15),
            purge_retention: fusion_db::soft_delete::DEFAULT_RETENTION,
            media_store: StoreConfig::Local {
                dir: "data/media".into(),
            },
            media_max_bytes: 100 * 1024 * 1024,
        }
    }
}

fn media_store_from_env() -> Result<StoreConfig, ConfigError> {
    match var("PROPERTY_MEDIA_STORE").as_deref().map(str::trim) {
        None | Some("local") => Ok(StoreConfig::Local {
            dir: var("PROPERTY_MEDIA_DIR")
                .unwrap_or_else(|| "data/media".to_owned())
                .into(),
        }),
        Some("s3") => Ok(StoreConfig::S3 {
            bucket: var("PROPERTY_MEDIA_S3_BUCKET").ok_or(ConfigError::Missing(
                "PROPERTY_MEDIA_S3_BUCKET".to_owned(),
                "PROPERTY_MEDIA_STORE=s3 needs the bucket",
            ))?,
            endpoint: var("PROPERTY_MEDIA_S3_ENDPOINT"),
            region: var("PROPERTY_MEDIA_S3_REGION").unwrap_or_else(|| "us-east-1".to_owned()),
            access_key_id: var("PROPERTY_MEDIA_S3_ACCESS_KEY_ID"),
            secret_access_key: var("PROPERTY_MEDIA_S3_SECRET_ACCESS_KEY"),
        }),
        Some(other) => Err(ConfigError::Invalid {
            name: "PROPERTY_MEDIA_STORE".to_owned(),
            value: other.to_owned(),
            reason: "must be local or s3".to_owned(),
        }),
    }
}
