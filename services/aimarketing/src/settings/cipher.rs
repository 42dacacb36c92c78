//! Tenants' provider API keys at rest: AES-256-GCM under the key in `AI_SECRET_KEY`,
//! as finance seals its Xero tokens.
//!
//! A sealed value is `version (1 byte) ‖ nonce (12 bytes) ‖ ciphertext and tag`, with a
//! fresh random nonce per seal, so the same key sealed twice reads differently. The
//! tenant id is the associated data: a sealed key copied into another tenant's row
//! does not open there, whatever the row-level security around it.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;

/// The format of what [`KeyCipher::seal`] writes; a later key or scheme gets another.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// Why a key was refused or a sealed value did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    /// The configured key is not the base64 of 32 bytes.
    #[error(
        "AI_SECRET_KEY must be the base64 of exactly 32 random bytes (e.g. the output of \
         `openssl rand -base64 32`): {0}"
    )]
    BadKey(String),
    /// The value was sealed under another key, for another tenant, or was altered.
    #[error("the sealed value does not open with this key for this tenant")]
    Unopenable,
}

/// Seals and opens provider API keys for one tenant at a time. Its `Debug` shows no key.
#[derive(Clone)]
pub struct KeyCipher {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for KeyCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCipher(<key hidden>)")
    }
}

impl KeyCipher {
    /// The cipher for a key given as base64 (standard alphabet, padded) of 32 bytes.
    pub fn from_base64(encoded: &str) -> Result<Self, CipherError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|e| CipherError::BadKey(format!("not base64 ({e})")))?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CipherError::BadKey(format!("it decodes to {} bytes", bytes.len())))?;
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
    pub fn open(&self, tenant_id: i64, sealed: &[u8]) -> Result<Vec<u8>, CipherError> {
        let Some((&VERSION, rest)) = sealed.split_first() else {
            return Err(CipherError::Unopenable);
        };
        if rest.len() < NONCE_LEN {
            return Err(CipherError::Unopenable);
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
            .map_err(|_| CipherError::Unopenable)
    }
}

/// What binds a sealed value to its tenant and to this use.
fn associated_data(tenant_id: i64) -> Vec<u8> {
    let mut aad = b"fusion.aimarketing.provider-api-key/tenant/".to_vec();
    aad.extend_from_slice(&tenant_id.to_be_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 ASCII bytes

    #[test]
    fn a_sealed_key_opens_for_its_tenant_only() {
        let cipher = KeyCipher::from_base64(KEY).unwrap();
        let sealed = cipher.seal(7, b"sk-tenant-seven");
        assert!(!sealed.windows(6).any(|w| w == b"sk-ten"), "not plaintext");
        assert_eq!(cipher.open(7, &sealed).unwrap(), b"sk-tenant-seven");
        assert_eq!(cipher.open(8, &sealed), Err(CipherError::Unopenable));
        assert_ne!(cipher.seal(7, b"sk-tenant-seven"), sealed, "fresh nonce");
    }

    #[test]
    fn an_altered_value_or_another_key_does_not_open() {
        let cipher = KeyCipher::from_base64(KEY).unwrap();
        let mut sealed = cipher.seal(1, b"secret");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(cipher.open(1, &sealed), Err(CipherError::Unopenable));
        let other = KeyCipher::from_base64(&STANDARD.encode([9u8; 32])).unwrap();
        assert_eq!(
            other.open(1, &cipher.seal(1, b"secret")),
            Err(CipherError::Unopenable)
        );
        assert_eq!(cipher.open(1, &[]), Err(CipherError::Unopenable));
    }

    #[test]
    fn only_32_byte_keys_are_accepted() {
        assert!(matches!(
            KeyCipher::from_base64("not base64!"),
            Err(CipherError::BadKey(_))
        ));
        assert!(matches!(
            KeyCipher::from_base64(&STANDARD.encode([1u8; 16])),
            Err(CipherError::BadKey(_))
        ));
        assert!(!format!("{:?}", KeyCipher::from_base64(KEY).unwrap()).contains(KEY));
    }
}
