//! Settings from the environment.
//!
//! Each service reads its own variables under a prefix (`IDENTITY`, `PROPERTY`, …)
//! and a few shared `FUSION_*` ones:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `<PREFIX>_GRPC_ADDR` | `0.0.0.0:<port from API.md>` | gRPC listen address |
//! | `<PREFIX>_ADMIN_ADDR` | `0.0.0.0:<admin port>` | `/live`, `/ready`, `/metrics` |
//! | `<PREFIX>_DATABASE_URL`, else `DATABASE_URL` | required | PostgreSQL as the service's own application role (`fusion_db::service_role`) |
//! | `<PREFIX>_MIGRATION_DATABASE_URL`, else `MIGRATION_DATABASE_URL` | none | PostgreSQL as the owner role (migrations, purge) |
//! | `<PREFIX>_JOBS_DATABASE_URL`, else `JOBS_DATABASE_URL` | the migration URL | PostgreSQL as the context's housekeeping role (`fusion_<schema>_jobs`): the relay, pruning and purge jobs; without either URL they do not run here |
//! | `<PREFIX>_DB_MAX_CONNECTIONS` | `10` | pool size |
//! | `<PREFIX>_DB_ACQUIRE_TIMEOUT_MS` | `3000` | longest wait for a pooled connection before UNAVAILABLE |
//! | `<PREFIX>_DB_STATEMENT_TIMEOUT_MS` | `30000` | longest statement when the caller set no shorter deadline |
//! | `<PREFIX>_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS` | `30000` | a transaction idle this long is ended by PostgreSQL |
//! | `<PREFIX>_MAX_IN_FLIGHT` | `256` | calls served at once; more are shed with RESOURCE_EXHAUSTED |
//! | `<PREFIX>_STREAM_IDLE_TIMEOUT_MS` | `30000` | a client stream (upload, import) that sends nothing this long ends with DEADLINE_EXCEEDED |
//! | `<PREFIX>_DRAIN_SECONDS` | `5` | time between NOT_SERVING and closing the listener |
//! | `<PREFIX>_SHUTDOWN_DEADLINE_SECONDS` | `20` | longest wait for in-flight calls |
//! | `FUSION_JWT_ISSUER` | `fusion-identity` | expected `iss` |
//! | `FUSION_JWT_AUDIENCE` | `fusion-api` | expected `aud` |
//! | `FUSION_PAGE_TOKEN_SECRET` | random per process | key signing page tokens; set it (same value on every replica) in production |
//! | `NATS_URL` | `nats://127.0.0.1:4222` | NATS JetStream, for integration events |
//! | `<PREFIX>_RELAY_RETENTION_HOURS` | `72` | relayed events are deleted from the outbox after this long |

use std::fmt::Display;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use fusion_tenancy::JwtConfig;

/// A setting that is missing or malformed; the message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{0} is not set; {1}")]
    Missing(String, &'static str),
    /// A variable is set but cannot be read.
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

/// The value of `name`, if set and not empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The value of `name` parsed as `T`, or `default` when unset.
pub fn parse_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match var(name) {
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

/// A duration given in milliseconds in `name`, or `default_ms`.
fn millis(name: &str, default_ms: u64) -> Result<Duration, ConfigError> {
    parse_or(name, default_ms).map(Duration::from_millis)
}

/// Settings every service has.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// e.g. `identity`.
    pub service_name: String,
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// Admin HTTP listen address.
    pub admin_addr: SocketAddr,
    /// Application-role database URL.
    pub database_url: String,
    /// Owner-role database URL, for migrations.
    pub migration_database_url: Option<String>,
    /// Housekeeping-role database URL, for the jobs that work across tenants (relay,
    /// pruning, purge); see [`ServiceConfig::jobs_url`].
    pub jobs_database_url: Option<String>,
    /// Pool size.
    pub db_max_connections: u32,
    /// Longest wait for a pooled connection.
    pub db_acquire_timeout: Duration,
    /// Longest statement when the caller's deadline is further away (or unset).
    pub db_statement_timeout: Duration,
    /// How long PostgreSQL lets a transaction sit idle before ending it.
    pub db_idle_in_transaction_timeout: Duration,
    /// Calls served at once; more are shed with RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
    /// How long a client stream may pause between messages.
    pub stream_idle_timeout: Duration,
    /// Drain window on shutdown.
    pub drain: Duration,
    /// Deadline for in-flight calls on shutdown.
    pub shutdown_deadline: Duration,
    /// Token issuer/audience/leeway.
    pub jwt: JwtConfig,
    /// Key for page tokens.
    pub page_token_secret: Vec<u8>,
    /// NATS JetStream for integration events; `None` (in-process tests) relays nothing
    /// and the events stay in the outbox.
    pub nats_url: Option<String>,
    /// How long relayed events stay in the outbox.
    pub relay_retention: Duration,
}

impl ServiceConfig {
    /// Settings for a service run in-process (tests, the local stack): loopback
    /// addresses on ephemeral ports, no drain window, default token checks, a fixed
    /// page-token key.
    pub fn local(service_name: &str, database_url: impl Into<String>) -> Self {
        Self {
            service_name: service_name.to_owned(),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            migration_database_url: None,
            jobs_database_url: None,
            db_max_connections: 5,
            db_acquire_timeout: Duration::from_secs(3),
            db_statement_timeout: Duration::from_secs(30),
            db_idle_in_transaction_timeout: Duration::from_secs(30),
            max_in_flight: 256,
            stream_idle_timeout: crate::limits::STREAM_IDLE_TIMEOUT,
            drain: Duration::ZERO,
            shutdown_deadline: Duration::from_secs(5),
            jwt: JwtConfig::default(),
            page_token_secret: format!("fusion-local-{service_name}-page-tokens").into_bytes(),
            nats_url: None,
            relay_retention: Duration::from_secs(72 * 3600),
        }
    }

    /// Reads the settings of `service_name` under `prefix` (see the module docs).
    pub fn from_env(
        prefix: &str,
        service_name: &str,
        default_grpc_port: u16,
        default_admin_port: u16,
    ) -> Result<Self, ConfigError> {
        let name = |suffix: &str| format!("{prefix}_{suffix}");
        let database_url = var(&name("DATABASE_URL"))
            .or_else(|| var("DATABASE_URL"))
            .ok_or_else(|| {
                ConfigError::Missing(
                    name("DATABASE_URL"),
                    "set it (or DATABASE_URL) to a postgres:// URL for the application role",
                )
            })?;
        let page_token_secret = match var("FUSION_PAGE_TOKEN_SECRET") {
            Some(secret) if secret.len() >= 16 => secret.into_bytes(),
            Some(secret) => {
                return Err(ConfigError::Invalid {
                    name: "FUSION_PAGE_TOKEN_SECRET".into(),
                    value: "<hidden>".into(),
                    reason: format!("must be at least 16 bytes, got {}", secret.len()),
                });
            }
            None => {
                tracing::warn!(
                    "FUSION_PAGE_TOKEN_SECRET is not set: page tokens are signed with a random \
                     key and will not survive a restart or work across replicas"
                );
                rand::random::<[u8; 32]>().to_vec()
            }
        };
        let defaults = JwtConfig::default();
        Ok(Self {
            service_name: service_name.to_owned(),
            grpc_addr: parse_or(
                &name("GRPC_ADDR"),
                SocketAddr::from(([0, 0, 0, 0], default_grpc_port)),
            )?,
            admin_addr: parse_or(
                &name("ADMIN_ADDR"),
                SocketAddr::from(([0, 0, 0, 0], default_admin_port)),
            )?,
            database_url,
            migration_database_url: var(&name("MIGRATION_DATABASE_URL"))
                .or_else(|| var("MIGRATION_DATABASE_URL")),
            jobs_database_url: var(&name("JOBS_DATABASE_URL")).or_else(|| var("JOBS_DATABASE_URL")),
            db_max_connections: parse_or(&name("DB_MAX_CONNECTIONS"), 10)?,
            db_acquire_timeout: millis(&name("DB_ACQUIRE_TIMEOUT_MS"), 3_000)?,
            db_statement_timeout: millis(&name("DB_STATEMENT_TIMEOUT_MS"), 30_000)?,
            db_idle_in_transaction_timeout: millis(
                &name("DB_IDLE_IN_TRANSACTION_TIMEOUT_MS"),
                30_000,
            )?,
            max_in_flight: parse_or(&name("MAX_IN_FLIGHT"), 256)?,
            stream_idle_timeout: millis(&name("STREAM_IDLE_TIMEOUT_MS"), 30_000)?,
            drain: Duration::from_secs(parse_or(&name("DRAIN_SECONDS"), 5)?),
            shutdown_deadline: Duration::from_secs(parse_or(
                &name("SHUTDOWN_DEADLINE_SECONDS"),
                20,
            )?),
            jwt: JwtConfig {
                issuer: var("FUSION_JWT_ISSUER").unwrap_or(defaults.issuer),
                audience: var("FUSION_JWT_AUDIENCE").unwrap_or(defaults.audience),
                leeway: defaults.leeway,
            },
            page_token_secret,
            nats_url: Some(var("NATS_URL").unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned())),
            relay_retention: Duration::from_secs(
                parse_or::<u64>(&name("RELAY_RETENTION_HOURS"), 72)? * 3600,
            ),
        })
    }
}

impl ServiceConfig {
    /// Where the cross-tenant background jobs connect: the housekeeping role's URL, or
    /// (older deployments) the owner's, which owns every schema and so reaches more than
    /// the jobs need; `None`: the jobs do not run in this process.
    pub fn jobs_url(&self) -> Option<&str> {
        match (&self.jobs_database_url, &self.migration_database_url) {
            (Some(jobs), _) => Some(jobs),
            (None, Some(owner)) => {
                tracing::warn!(
                    service = %self.service_name,
                    "no jobs database URL: housekeeping runs as the schema owner"
                );
                Some(owner)
            }
            (None, None) => None,
        }
    }
}

/// A service's own client credentials: those of its platform service account, with
/// which its event consumers have tokens issued for the service's system account in
/// each event's tenant (`fusion_events::ServiceCredentials`).
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `<PREFIX>_SERVICE_CLIENT_SECRET`, else `SERVICE_CLIENT_SECRET` | none: consumers run without a service account | the secret identity was configured with (`IDENTITY_PLATFORM_SERVICE_ACCOUNTS`) |
/// | `<PREFIX>_SERVICE_CLIENT_ID`, else `SERVICE_CLIENT_ID` | `sa_platform_<service>` | the client id, for an account not named after the service |
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// `sa_platform_crm`, or `sa_<tenant id>_<account id>`.
    pub client_id: String,
    /// The secret; never printed.
    pub client_secret: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

impl ClientCredentials {
    /// The client id of the platform service account provisioned for `service`.
    pub fn platform_client_id(service: &str) -> String {
        format!("sa_platform_{service}")
    }

    /// Service `service`'s credentials from the variables under `prefix` (see the type's
    /// docs): `None` when no secret is set; a client id without a secret is an error.
    pub fn from_env(prefix: &str, service: &str) -> Result<Option<Self>, ConfigError> {
        let read = |suffix: &str| {
            let name = format!("{prefix}_{suffix}");
            var(&name)
                .map(|v| (name, v))
                .or_else(|| var(suffix).map(|v| (suffix.to_owned(), v)))
        };
        Self::from_values(
            prefix,
            service,
            read("SERVICE_CLIENT_ID"),
            read("SERVICE_CLIENT_SECRET"),
        )
    }

    fn from_values(
        prefix: &str,
        service: &str,
        id: Option<(String, String)>,
        secret: Option<(String, String)>,
    ) -> Result<Option<Self>, ConfigError> {
        match (id, secret) {
            (None, None) => Ok(None),
            (Some((name, _)), None) => Err(ConfigError::Missing(
                format!("{prefix}_SERVICE_CLIENT_SECRET"),
                if name.starts_with(prefix) {
                    "a client id needs its secret"
                } else {
                    "SERVICE_CLIENT_ID needs its secret"
                },
            )),
            (id, Some((name, secret))) => {
                if secret.trim() != secret || secret.len() > 128 {
                    return Err(ConfigError::Invalid {
                        name,
                        value: "<hidden>".into(),
                        reason:
                            "a client secret has no surrounding spaces and at most 128 characters"
                                .into(),
                    });
                }
                Ok(Some(Self {
                    client_id: id
                        .map(|(_, v)| v.trim().to_owned())
                        .unwrap_or_else(|| Self::platform_client_id(service)),
                    client_secret: secret,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str, value: &str) -> Option<(String, String)> {
        Some((name.to_owned(), value.to_owned()))
    }

    #[test]
    fn client_credentials_default_their_id_to_the_services_platform_account() {
        assert_eq!(
            ClientCredentials::from_values("CRM", "crm", None, None).unwrap(),
            None
        );
        let creds = ClientCredentials::from_values(
            "CRM",
            "crm",
            None,
            pair(
                "SERVICE_CLIENT_SECRET",
                "s3cret-s3cret-s3cret-s3cret-s3cret",
            ),
        )
        .unwrap()
        .unwrap();
        assert_eq!(creds.client_id, "sa_platform_crm");
        let creds = ClientCredentials::from_values(
            "CRM",
            "crm",
            pair("CRM_SERVICE_CLIENT_ID", "sa_1_7"),
            pair("CRM_SERVICE_CLIENT_SECRET", "sas_x"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (creds.client_id.as_str(), creds.client_secret.as_str()),
            ("sa_1_7", "sas_x")
        );
        let shown = format!("{creds:?}");
        assert!(
            shown.contains("sa_1_7") && !shown.contains("sas_x"),
            "{shown}"
        );
    }

    #[test]
    fn a_client_id_without_a_secret_or_a_padded_secret_is_refused_without_showing_it() {
        let err =
            ClientCredentials::from_values("CRM", "crm", pair("SERVICE_CLIENT_ID", "sa_1_7"), None)
                .unwrap_err();
        assert!(
            err.to_string().contains("CRM_SERVICE_CLIENT_SECRET"),
            "{err}"
        );
        let err = ClientCredentials::from_values(
            "CRM",
            "crm",
            None,
            pair("CRM_SERVICE_CLIENT_SECRET", " padded "),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("padded"), "{err}");
    }

    #[test]
    fn a_malformed_value_names_the_variable() {
        // A name no other test sets; the process environment is shared between tests.
        let err = parse_or::<u16>("FUSION_TEST_UNSET_VARIABLE_FOR_CONFIG", 7).unwrap();
        assert_eq!(err, 7);
        let invalid = ConfigError::Invalid {
            name: "X_PORT".into(),
            value: "abc".into(),
            reason: "bad".into(),
        };
        assert!(invalid.to_string().starts_with("X_PORT=\"abc\""));
    }
}
