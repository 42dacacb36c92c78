//! Service accounts' client credentials.
//!
//! A client id is `sa_<tenant id>_<account id>`: the tenant lets IssueServiceToken bind
//! its transaction to the right tenant before it reads anything (row-level security
//! needs no cross-tenant read), the account id finds the account. A client secret is
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
}
