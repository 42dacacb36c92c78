//! Signing and verifying access tokens: Ed25519 (EdDSA) only, with key ids.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use futures::future::BoxFuture;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::Status;

use fusion_proto::errors;

use crate::{Claims, JwtConfig, Revocations};

/// An Ed25519 public key as published in the JWKS (`kty: OKP, crv: Ed25519`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// Key id, matched against a token's `kid` header.
    pub kid: String,
    /// The 32-byte public key, base64url without padding.
    pub x: String,
}

/// Signs access tokens with one Ed25519 key.
#[derive(Clone)]
pub struct TokenSigner {
    kid: String,
    key: EncodingKey,
    pkcs8_der: Vec<u8>,
    public: PublicKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A fresh random key.
    pub fn generate(kid: impl Into<String>) -> Self {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        Self::from_signing_key(kid.into(), &signing)
    }

    /// A signer from a PKCS#8 DER private key (as stored by [`TokenSigner::pkcs8_der`]).
    pub fn from_pkcs8_der(kid: impl Into<String>, der: &[u8]) -> Result<Self, String> {
        let signing = SigningKey::from_pkcs8_der(der)
            .map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?;
        Ok(Self::from_signing_key(kid.into(), &signing))
    }

    fn from_signing_key(kid: String, signing: &SigningKey) -> Self {
        let der = signing
            .to_pkcs8_der()
            .expect("an Ed25519 key encodes as PKCS#8")
            .as_bytes()
            .to_vec();
        let public = PublicKey {
            kid: kid.clone(),
            x: URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes()),
        };
        Self {
            kid,
            key: EncodingKey::from_ed_der(&der),
            pkcs8_der: der,
            public,
        }
    }

    /// The key id written in every token's header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key, PKCS#8 DER, for storage.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8_der
    }

    /// The public half, for the JWKS.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// Signs `claims` as a compact JWT with `alg: EdDSA` and this key's `kid`.
    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("signing with a valid Ed25519 key")
    }
}

/// Where verification keys come from: identity's own key table, identity's `GetJwks`
/// over gRPC, or a fixed set in tests.
pub trait KeyProvider: Send + Sync {
    /// Every public key that may verify a live token.
    fn keys(&self) -> BoxFuture<'_, Result<Vec<PublicKey>, String>>;
}

/// A fixed, replaceable set of keys.
#[derive(Debug, Default)]
pub struct StaticKeys {
    keys: RwLock<Vec<PublicKey>>,
}

impl StaticKeys {
    /// A provider that always returns `keys`.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        Self {
            keys: RwLock::new(keys),
        }
    }

    /// Replaces the keys (simulates a rotation).
    pub fn set(&self, keys: Vec<PublicKey>) {
        *self.keys.write().expect("key lock") = keys;
    }
}

impl KeyProvider for StaticKeys {
    fn keys(&self) -> BoxFuture<'_, Result<Vec<PublicKey>, String>> {
        let keys = self.keys.read().expect("key lock").clone();
        Box::pin(async move { Ok(keys) })
    }
}

/// Caches decoding keys by `kid`; an unknown `kid` triggers a refresh from the
/// provider, at most once per `min_refresh` so garbage tokens cannot hammer it.
pub struct JwksCache {
    provider: Arc<dyn KeyProvider>,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_refresh: Mutex<Option<Instant>>,
    refresh: tokio::sync::Mutex<()>,
    min_refresh: Duration,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("min_refresh", &self.min_refresh)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache over `provider`, refreshing at most every `min_refresh`.
    pub fn new(provider: Arc<dyn KeyProvider>, min_refresh: Duration) -> Self {
        Self {
            provider,
            keys: RwLock::new(HashMap::new()),
            last_refresh: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            min_refresh,
        }
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().expect("key lock").get(kid).cloned()
    }

    /// The decoding key for `kid`, refreshing once if it is unknown.
    pub async fn key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        let _one_refresher = self.refresh.lock().await;
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        let due = self
            .last_refresh
            .lock()
            .expect("refresh lock")
            .is_none_or(|at| at.elapsed() >= self.min_refresh);
        if due {
            *self.last_refresh.lock().expect("refresh lock") = Some(Instant::now());
            match self.provider.keys().await {
                Ok(keys) => {
                    let fresh: HashMap<_, _> = keys
                        .into_iter()
                        .filter_map(|k| {
                            DecodingKey::from_ed_components(&k.x)
                                .ok()
                                .map(|d| (k.kid, d))
                        })
                        .collect();
                    *self.keys.write().expect("key lock") = fresh;
                }
                Err(e) => tracing::warn!(error = %e, "could not refresh verification keys"),
            }
        }
        self.cached(kid)
    }
}

/// Verifies access tokens: EdDSA only, known `kid`, `iss`/`aud`/`exp`/`nbf` checked,
/// and, with [`JwtVerifier::with_revocations`], not revoked.
///
/// A token that verified once is remembered until it expires, so a busy client does
/// not pay for an Ed25519 signature check on every call; an expired entry is never
/// served, and the cache is bounded.
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    cfg: JwtConfig,
    keys: Arc<JwksCache>,
    verified: Arc<Mutex<HashMap<String, Claims>>>,
    revocations: Option<Arc<Revocations>>,
}

/// Most tokens remembered at once; past this the cache starts over.
const VERIFIED_CACHE_CAPACITY: usize = 50_000;

impl JwtVerifier {
    /// A verifier for tokens issued per `cfg`, with keys from `keys`.
    pub fn new(cfg: JwtConfig, keys: Arc<JwksCache>) -> Self {
        Self {
            cfg,
            keys,
            verified: Arc::new(Mutex::new(HashMap::new())),
            revocations: None,
        }
    }

    /// The same verifier refusing tokens `revocations` lists (UNAUTHENTICATED
    /// `TOKEN_REVOKED`), remembered or not.
    pub fn with_revocations(mut self, revocations: Arc<Revocations>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// The deny list this verifier consults, if any.
    pub fn revocations(&self) -> Option<&Arc<Revocations>> {
        self.revocations.as_ref()
    }

    /// The claims of a valid token, or UNAUTHENTICATED with a reason.
    pub async fn verify(&self, token: &str) -> Result<Claims, Status> {
        let claims = self.verify_unrevoked(token).await?;
        // Checked on every call, after the cache: a revocation reaches tokens
        // verified before it.
        if let Some(revocations) = &self.revocations {
            revocations.check(&claims)?;
        }
        Ok(claims)
    }

    async fn verify_unrevoked(&self, token: &str) -> Result<Claims, Status> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(claims) = self.verified.lock().expect("verified cache").get(token)
            && claims.exp > now
            && claims.nbf <= now + self.cfg.leeway.as_secs()
        {
            return Ok(claims.clone());
        }
        let claims = self.verify_signature(token).await?;
        // Cache only while the token is within its plain (leeway-free) lifetime.
        if claims.exp > now {
            let mut verified = self.verified.lock().expect("verified cache");
            if verified.len() >= VERIFIED_CACHE_CAPACITY {
                verified.clear();
            }
            verified.insert(token.to_owned(), claims.clone());
        }
        Ok(claims)
    }

    async fn verify_signature(&self, token: &str) -> Result<Claims, Status> {
        let invalid =
            |why: &str| errors::unauthenticated("TOKEN_INVALID", format!("invalid token: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed"))?;
        // Pinned: `none`, HMAC (including HS256 keyed with our public key) and RSA
        // tokens are refused before any key is looked at.
        if header.alg != Algorithm::EdDSA {
            return Err(invalid("algorithm not allowed"));
        }
        let kid = header.kid.ok_or_else(|| invalid("no key id"))?;
        let key = self
            .keys
            .key(&kid)
            .await
            .ok_or_else(|| invalid("unknown signing key"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.cfg.issuer]);
        validation.set_audience(&[&self.cfg.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.cfg.leeway.as_secs();
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e
            .kind()
        {
            ErrorKind::ExpiredSignature => {
                errors::unauthenticated("TOKEN_EXPIRED", "token expired")
            }
            ErrorKind::ImmatureSignature => {
                errors::unauthenticated("TOKEN_NOT_YET_VALID", "token not yet valid")
            }
            ErrorKind::InvalidIssuer => invalid("wrong issuer"),
            ErrorKind::InvalidAudience => invalid("wrong audience"),
            ErrorKind::InvalidSignature => invalid("bad signature"),
            _ => invalid("rejected"),
        })?;
        let claims = data.claims;
        if claims.tid <= 0 || claims.sub.parse::<i64>().map_or(true, |u| u <= 0) {
            return Err(invalid("missing tenant or subject"));
        }
        Ok(claims)
    }
}
