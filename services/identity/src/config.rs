//! Identity settings: the shared service settings plus token lifetimes, login
//! throttling and the platform administrator bootstrap.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | (shared) | | see `fusion_service::config` with prefix `IDENTITY`, ports 50051/9001 |
//! | `IDENTITY_ACCESS_TOKEN_TTL_SECONDS` | `900` | access-token lifetime |
//! | `IDENTITY_REFRESH_TOKEN_TTL_SECONDS` | `2592000` | refresh-token lifetime (30 days) |
//! | `IDENTITY_LOGIN_MAX_FAILURES_PER_ACCOUNT` | `5` | failures for one account from one source before that source is locked out of that account (others log in to it as before) |
//! | `IDENTITY_LOGIN_MAX_FAILURES_PER_SOURCE` | `20` | failures from one source, whatever the accounts, before the source locks |
//! | `IDENTITY_LOGIN_WINDOW_SECONDS` | `900` | counters are forgotten after this long without a failure (counted from the end of a lock) |
//! | `IDENTITY_LOGIN_LOCKOUT_SECONDS` | `900` | first lockout; doubles with every further failure after a lock (capped at a day) |
//! | `IDENTITY_PASSWORD_HASHING_CONCURRENCY` | the number of CPUs | argon2 runs at once (each takes 19 MiB and a core for tens of milliseconds) |
//! | `IDENTITY_PASSWORD_HASHING_WAIT_MS` | `250` | how long a call waits for a hashing slot before RESOURCE_EXHAUSTED `HASHING_BUSY` |
//! | `FUSION_FORWARDING_SECRET` | none | shared with the edge (at least 32 characters): a client address in `x-fusion-client-addr` is trusted only with the edge's tag under it; otherwise the source of a login is the TCP peer |
//! | `IDENTITY_MIGRATE_ON_START` | `true` | apply migrations at start when a migration URL is set |
//! | `IDENTITY_PURGE_RETENTION_DAYS` | `30` | soft-deleted users and roles are removed after this long (needs the migration URL) |
//! | `IDENTITY_PLATFORM_SERVICE_ACCOUNTS` | none | platform service accounts to provision at start and by `bootstrap-platform`: `<service>:<secret>` items separated by commas, e.g. `crm:<secret>,property:<secret>` (see [`PlatformServiceAccount`]) |

use std::time::Duration;

use fusion_service::ConfigError;
use fusion_service::config::{ServiceConfig, parse_or};

/// How many failed logins lock an account for one source, or a source for every
/// account, and for how long.
#[derive(Clone, Debug)]
pub struct ThrottleConfig {
    /// Failures for one account from one source before that source is locked out of
    /// it: a guesser elsewhere never locks the account's owner out.
    pub max_failures_per_account: i32,
    /// Failures from one source, over all accounts, before the source locks.
    pub max_failures_per_source: i32,
    /// A counter is forgotten after this long without a failure (counted from the end
    /// of its lock, so a lock does not reset its own backoff).
    pub window: Duration,
    /// The first lockout; each further failure after a lock doubles it (capped at a day).
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

/// How much password hashing (argon2: a core and 19 MiB for tens of milliseconds
/// each) runs at once, and how long a call waits for a slot.
#[derive(Clone, Debug)]
pub struct HashingConfig {
    /// Hashes and verifications running at once.
    pub max_concurrent: usize,
    /// How long a call waits for a slot before RESOURCE_EXHAUSTED.
    pub max_wait: Duration,
}

impl Default for HashingConfig {
    fn default() -> Self {
        Self {
            max_concurrent: std::thread::available_parallelism().map_or(2, usize::from),
            max_wait: Duration::from_millis(250),
        }
    }
}

/// A platform service account provisioned from configuration: the platform tenant's
/// account for `service` (client id `sa_platform_<service>`), holding the
/// `platform_service` role, with `secret` among its client secrets. A service named
/// twice has both secrets, so a secret rotates without a gap: add the new one, roll the
/// service over, drop the old one. Secrets are stored as SHA-256 digests, like every
/// client secret; a configured service's other secrets are revoked.
#[derive(Clone, PartialEq, Eq)]
pub struct PlatformServiceAccount {
    /// The service (`crm`): lowercase letters, digits and single dashes.
    pub service: String,
    /// One of its client secrets: 32 to 128 characters, no spaces or commas.
    pub secret: String,
}

impl std::fmt::Debug for PlatformServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformServiceAccount")
            .field("service", &self.service)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The shortest configured secret: 32 characters of any reasonable alphabet carry
/// well over 128 bits when they are random, as they must be.
pub const CONFIGURED_SECRET_MIN: usize = 32;

/// Reads `crm:<secret>,property:<secret>`: items separated by commas (spaces around
/// them ignored), each a service name, a colon and a secret.
pub fn parse_platform_service_accounts(value: &str) -> Result<Vec<PlatformServiceAccount>, String> {
    let mut accounts: Vec<PlatformServiceAccount> = Vec::new();
    for (n, item) in value.split(',').map(str::trim).enumerate() {
        if item.is_empty() {
            continue;
        }
        let Some((service, secret)) = item.split_once(':') else {
            return Err(format!("item {} is not <service>:<secret>", n + 1));
        };
        crate::auth::client_secrets::service_name(service)
            .map_err(|e| format!("item {}: the service name {e}", n + 1))?;
        let len = secret.chars().count();
        let max = crate::auth::client_secrets::SECRET_MAX;
        if !(CONFIGURED_SECRET_MIN..=max).contains(&len)
            || secret.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "item {} ({service}): a secret is {CONFIGURED_SECRET_MIN} to {max} characters without spaces",
                n + 1
            ));
        }
        let held = accounts.iter().filter(|a| a.service == service).count();
        if held >= crate::auth::client_secrets::SECRETS_MAX {
            return Err(format!(
                "{service} has more than {} secrets",
                crate::auth::client_secrets::SECRETS_MAX
            ));
        }
        accounts.push(PlatformServiceAccount {
            service: service.to_owned(),
            secret: secret.to_owned(),
        });
    }
    Ok(accounts)
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
    /// Bounds on password hashing.
    pub hashing: HashingConfig,
    /// Verifies the client address the edge forwards; none means every login's source
    /// is its TCP peer.
    pub forwarding_key: Option<fusion_tenancy::ForwardingKey>,
    /// Apply migrations at start when `service.migration_database_url` is set.
    pub migrate_on_start: bool,
    /// How long soft-deleted rows are kept before the purge job removes them.
    pub purge_retention: Duration,
    /// Platform service accounts to provision (bootstrap), at start and by
    /// `bootstrap-platform`.
    pub platform_service_accounts: Vec<PlatformServiceAccount>,
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
            hashing: HashingConfig::default(),
            forwarding_key: None,
            migrate_on_start: true,
            purge_retention: fusion_db::soft_delete::DEFAULT_RETENTION,
            platform_service_accounts: Vec::new(),
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
        self.hashing.max_concurrent = parse_or(
            "IDENTITY_PASSWORD_HASHING_CONCURRENCY",
            self.hashing.max_concurrent,
        )?
        .max(1);
        self.hashing.max_wait = Duration::from_millis(parse_or(
            "IDENTITY_PASSWORD_HASHING_WAIT_MS",
            u64::try_from(self.hashing.max_wait.as_millis()).unwrap_or(u64::MAX),
        )?);
        const FORWARDING: &str = "FUSION_FORWARDING_SECRET";
        if let Some(secret) = fusion_service::config::var(FORWARDING) {
            self.forwarding_key =
                Some(fusion_tenancy::ForwardingKey::new(&secret).ok_or_else(|| {
                    ConfigError::Invalid {
                        name: FORWARDING.to_owned(),
                        value: "<redacted>".to_owned(),
                        reason: format!(
                            "must be at least {} characters",
                            fusion_tenancy::forwarded::SECRET_MIN
                        ),
                    }
                })?);
        }
        self.migrate_on_start = parse_or("IDENTITY_MIGRATE_ON_START", self.migrate_on_start)?;
        let days = parse_or(
            "IDENTITY_PURGE_RETENTION_DAYS",
            self.purge_retention.as_secs() / 86_400,
        )?;
        self.purge_retention = Duration::from_secs(days * 86_400);
        const ACCOUNTS: &str = "IDENTITY_PLATFORM_SERVICE_ACCOUNTS";
        if let Some(value) = fusion_service::config::var(ACCOUNTS) {
            self.platform_service_accounts =
                parse_platform_service_accounts(&value).map_err(|reason| ConfigError::Invalid {
                    name: ACCOUNTS.to_owned(),
                    // Never the secrets themselves.
                    value: "<redacted>".to_owned(),
                    reason,
                })?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "sas_fedcba9876543210fedcba9876543210fedcba98765";

    #[test]
    fn platform_service_accounts_are_service_secret_pairs() {
        let accounts =
            parse_platform_service_accounts(&format!(" crm:{A} , property:{B},crm:{B},")).unwrap();
        let pairs: Vec<(&str, &str)> = accounts
            .iter()
            .map(|a| (a.service.as_str(), a.secret.as_str()))
            .collect();
        assert_eq!(pairs, [("crm", A), ("property", B), ("crm", B)]);
        assert_eq!(parse_platform_service_accounts("").unwrap(), []);
    }

    #[test]
    fn malformed_items_short_secrets_and_bad_names_are_refused_without_the_secret() {
        for bad in [
            format!("crm{A}"),
            format!("Crm:{A}"),
            format!("crm_x:{A}"),
            "crm:short".to_owned(),
            format!("crm:{A} {A}"),
            format!("crm:{}", "x".repeat(129)),
            (0..6)
                .map(|_| format!("crm:{A}"))
                .collect::<Vec<_>>()
                .join(","),
        ] {
            let err = parse_platform_service_accounts(&bad).unwrap_err();
            assert!(!err.contains(A), "{err}");
        }
    }

    #[test]
    fn the_debug_form_hides_secrets() {
        let accounts = parse_platform_service_accounts(&format!("crm:{A}")).unwrap();
        let shown = format!("{accounts:?}");
        assert!(shown.contains("crm") && !shown.contains(A), "{shown}");
    }
}
