//! Service accounts' client credentials.
//!
//! A client id is `sa_<tenant id>_<account id>`: the tenant lets IssueServiceToken bind
//! its transaction to the right tenant before it reads anything (row-level security
//! needs no cross-tenant read), the account id finds the account. A platform service
//! account provisioned by configuration (bootstrap) also answers to
//! `sa_platform_<service>` (`sa_platform_crm`), so a service knows its client id before
//! any id is assigned: the platform tenant is found by its slug, the account by its
//! service name. A client secret is
//! `sas_` and 256 random bits, base64url: only its SHA-256 is stored (a secret of that
//! entropy needs no slow hash), beside its first characters, shown to tell secrets
//! apart. Digests are compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

/// What every client secret starts with.
const SECRET_PREFIX: &str = "sas_";

/// How many characters of a secret are kept in the clear (`sas_` and 8 more): 48 of
/// its 256 bits, enough to tell secrets apart, far too few to matter.
const VISIBLE: usize = SECRET_PREFIX.len() + 8;

/// The longest client secret IssueServiceToken reads; a real one is 47 characters.
pub const SECRET_MAX: usize = 128;

/// The longest client id IssueServiceToken reads (two 19-digit ids and the `sa_`).
pub const CLIENT_ID_MAX: usize = 64;

/// Most unrevoked secrets one account holds: enough to rotate without a gap.
pub const SECRETS_MAX: usize = 5;

/// A new secret: the secret itself (shown once), its visible prefix and its digest.
pub struct NewSecret {
    /// `sas_` and 43 base64url characters.
    pub secret: String,
    /// The first characters of `secret`.
    pub prefix: String,
    /// SHA-256 of `secret`.
    pub digest: Vec<u8>,
}

/// A fresh secret from the operating system's generator.
pub fn new_secret() -> NewSecret {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewSecret {
        prefix: secret[..VISIBLE].to_owned(),
        digest: digest(&secret),
        secret,
    }
}

/// How many characters of a configured secret (one an operator chose, at least 32
/// long) are kept in the clear to tell it apart.
const CONFIGURED_VISIBLE: usize = 6;

/// The prefix kept for a secret that came from configuration rather than
/// [`new_secret`]: its first characters, fewer of them, since its shape is unknown.
pub fn configured_prefix(secret: &str) -> String {
    secret.chars().take(CONFIGURED_VISIBLE).collect()
}

/// The stored form of a secret.
pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Whether two digests are equal, in time that depends only on their lengths.
pub fn same_digest(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// What a client id names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientId {
    /// `sa_<tenant id>_<account id>`.
    Account {
        /// The account's tenant.
        tenant_id: i64,
        /// The account.
        account_id: i64,
    },
    /// `sa_platform_<service>`: the platform tenant's account provisioned for `service`.
    Platform {
        /// The service's name (`crm`).
        service: String,
    },
}

/// What a platform client id starts with.
const PLATFORM_PREFIX: &str = "sa_platform_";

/// The longest service name: lowercase letters, digits and single dashes.
pub const SERVICE_NAME_MAX: usize = 40;

/// A service name: 1 to 40 lowercase letters, digits and single dashes, starting with
/// a letter (`crm`, `ai-marketing`). It names a platform service account, its client id
/// and its system account in every tenant.
pub fn service_name(value: &str) -> Result<(), String> {
    let ok = (1..=SERVICE_NAME_MAX).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.ends_with('-')
        && !value.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be 1-{SERVICE_NAME_MAX} lowercase letters, digits and single dashes, starting with a letter"
        ))
    }
}

/// The client id of the platform service account provisioned for `service`.
pub fn platform_client_id(service: &str) -> String {
    format!("{PLATFORM_PREFIX}{service}")
}

/// What a well-formed client id names.
pub fn parse(client_id: &str) -> Option<ClientId> {
    if let Some(service) = client_id.strip_prefix(PLATFORM_PREFIX) {
        return service_name(service).is_ok().then(|| ClientId::Platform {
            service: service.to_owned(),
        });
    }
    parse_client_id(client_id).map(|(tenant_id, account_id)| ClientId::Account {
        tenant_id,
        account_id,
    })
}

/// The client id of account `account_id` of tenant `tenant_id`.
pub fn client_id(tenant_id: i64, account_id: i64) -> String {
    format!("sa_{tenant_id}_{account_id}")
}

/// The tenant and account a well-formed client id names.
pub fn parse_client_id(client_id: &str) -> Option<(i64, i64)> {
    let (tenant, account) = client_id.strip_prefix("sa_")?.split_once('_')?;
    let positive = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse::<i64>().ok())
            .flatten()
            .filter(|n| *n > 0)
    };
    Some((positive(tenant)?, positive(account)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_high_entropy_and_kept_as_a_digest_and_a_prefix() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), SECRET_PREFIX.len() + 43);
        assert!(a.secret.starts_with(&a.prefix) && a.prefix.len() == 12);
        assert_eq!(a.digest, digest(&a.secret));
        assert_eq!(a.digest.len(), 32);
        assert!(a.secret.len() <= SECRET_MAX);
    }

    #[test]
    fn digests_compare_equal_only_when_equal() {
        let a = digest("sas_one");
        assert!(same_digest(&a, &digest("sas_one")));
        assert!(!same_digest(&a, &digest("sas_two")));
        assert!(!same_digest(&a, &a[..31]));
        assert!(!same_digest(&a, &[]));
    }

    #[test]
    fn client_ids_name_a_tenant_and_an_account() {
        assert_eq!(parse_client_id(&client_id(7, 42)), Some((7, 42)));
        assert_eq!(parse_client_id("sa_0_42"), None);
        assert_eq!(parse_client_id("sa_7_-1"), None);
        assert_eq!(parse_client_id("sa_7_+1"), None);
        assert_eq!(parse_client_id("sa_7"), None);
        assert_eq!(parse_client_id("sa_7_4_2"), None);
        assert_eq!(parse_client_id("rt_7_42"), None);
        assert_eq!(parse_client_id("sa_99999999999999999999_1"), None);
        assert!(client_id(i64::MAX, i64::MAX).len() <= CLIENT_ID_MAX);
    }

    #[test]
    fn platform_client_ids_name_a_service_and_numeric_ones_still_work() {
        assert_eq!(
            parse(&platform_client_id("crm")),
            Some(ClientId::Platform {
                service: "crm".into()
            })
        );
        assert_eq!(
            parse("sa_platform_ai-marketing"),
            Some(ClientId::Platform {
                service: "ai-marketing".into()
            })
        );
        assert_eq!(
            parse(&client_id(7, 42)),
            Some(ClientId::Account {
                tenant_id: 7,
                account_id: 42
            })
        );
        for bad in [
            "sa_platform_",
            "sa_platform_CRM",
            "sa_platform_1crm",
            "sa_platform_crm-",
            "sa_platform_a--b",
            "sa_platform_crm_x",
            "sa_platform_crm ",
            "sa_7",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        let longest = platform_client_id(&"a".repeat(SERVICE_NAME_MAX));
        assert!(parse(&longest).is_some() && longest.len() <= CLIENT_ID_MAX);
        assert_eq!(
            parse(&platform_client_id(&"a".repeat(SERVICE_NAME_MAX + 1))),
            None
        );
    }
}
