//! Xero tokens at rest: AES-256-GCM under the key in `FINANCE_SECRET_KEY`.
//!
//! A sealed value is `version (1 byte) ‖ nonce (12 bytes) ‖ ciphertext and tag`, with a
//! fresh random nonce per seal, so the same token sealed twice reads differently. The
//! tenant id is the associated data: a sealed token copied into another tenant's row
//! does not open there, whatever the row-level security around it.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;

/// The format of what [`TokenCipher::seal`] writes; a later key or scheme gets another.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// Why a key was refused or a sealed value did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The configured key is not the base64 of 32 bytes.
    #[error(
        "FINANCE_SECRET_KEY must be the base64 of exactly 32 random bytes (e.g. the output of \
         `openssl rand -base64 32`): {0}"
    )]
    BadKey(String),
    /// The value was sealed under another key, for another tenant, or was altered.
    #[error("the sealed value does not open with this key for this tenant")]
    Unopenable,
}

/// Seals and opens tokens for one tenant at a time. Its `Debug` shows no key.
#[derive(Clone)]
pub struct TokenCipher {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCipher(<key hidden>)")
    }
}

impl TokenCipher {
    /// The cipher for a key given as base64 (standard alphabet, padded) of 32 bytes.
    pub fn from_base64(encoded: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|e| CryptoError::BadKey(format!("not base64 ({e})")))?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::BadKey(format!("it decodes to {} bytes", bytes.len())))?;
        Ok(Self {
            cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(key)),
        })
    }

    /// `plaintext` sealed for `tenant_id`.
    pub fn seal(&self, tenant_id: i64, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = associated_data(tenant_id);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The plaintext of `sealed`, if it was sealed with this key for `tenant_id` and
    /// not altered since.
    pub fn open(&self, tenant_id: i64, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let Some((&VERSION, rest)) = sealed.split_first() else {
            return Err(CryptoError::Unopenable);
        };
        if rest.len() < NONCE_LEN {
            return Err(CryptoError::Unopenable);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce's length");
        let aad = associated_data(tenant_id);
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Unopenable)
    }
}

/// What binds a sealed value to its tenant (and to this use, so that a value sealed by
/// this module for another purpose does not open as a Xero token).
fn associated_data(tenant_id: i64) -> Vec<u8> {
    let mut aad = b"fusion.finance.xero-token/tenant/".to_vec();
    aad.extend_from_slice(&tenant_id.to_be_bytes());
    aad
}
