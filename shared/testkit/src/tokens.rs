//! Minting access tokens for tests of services other than identity.

use std::sync::Arc;
use std::time::Duration;

use fusion_tenancy::{Claims, JwksCache, JwtConfig, JwtVerifier, StaticKeys, TokenSigner};

/// A signing key, and a verifier that trusts it, for in-process services under test.
#[derive(Debug)]
pub struct TestKeys {
    /// Signs tokens.
    pub signer: TokenSigner,
    /// The issuer/audience tokens are minted for.
    pub config: JwtConfig,
    /// The verifier's key source; `set` it to simulate a rotation.
    pub provider: Arc<StaticKeys>,
}

impl Default for TestKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl TestKeys {
    /// A fresh key with the default issuer and audience.
    pub fn new() -> Self {
        let signer = TokenSigner::generate(format!("test-{}", uuid::Uuid::new_v4().simple()));
        let provider = Arc::new(StaticKeys::new(vec![signer.public_key()]));
        Self {
            signer,
            config: JwtConfig::default(),
            provider,
        }
    }

    /// A verifier trusting this key.
    pub fn verifier(&self) -> Arc<JwtVerifier> {
        let cache = JwksCache::new(self.provider.clone(), Duration::from_millis(100));
        Arc::new(JwtVerifier::new(self.config.clone(), Arc::new(cache)))
    }

    /// Claims for a user of a tenant with the given permissions, valid for 15 minutes;
    /// edit them for negative tests (expired, wrong audience, ...).
    pub fn claims(&self, tenant_id: i64, user_id: i64, perms: &[&str]) -> Claims {
        Claims::new(
            &self.config,
            tenant_id,
            user_id,
            vec!["test".to_owned()],
            perms.iter().map(|p| (*p).to_owned()).collect(),
            Duration::from_secs(900),
        )
    }

    /// A signed token for [`TestKeys::claims`].
    pub fn mint(&self, tenant_id: i64, user_id: i64, perms: &[&str]) -> String {
        self.signer.sign(&self.claims(tenant_id, user_id, perms))
    }

    /// A signed token for [`TestKeys::claims`] naming the tenant's IANA time zone
    /// (`tz`), e.g. "Australia/Sydney".
    pub fn mint_in_zone(&self, tenant_id: i64, user_id: i64, perms: &[&str], zone: &str) -> String {
        self.sign(&self.claims(tenant_id, user_id, perms).with_time_zone(zone))
    }

    /// Signs arbitrary claims with this key.
    pub fn sign(&self, claims: &Claims) -> String {
        self.signer.sign(claims)
    }
}
