//! Page sizes and page tokens (AIP-158).
//!
//! A token is `base64url(payload) "." base64url(HMAC-SHA256(payload))`. The payload
//! holds the last row's keyset values and a digest of the query it belongs to (filter,
//! order, show_deleted), so a token is opaque to clients, cannot be forged or edited,
//! and is refused when reused with a different query.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Page size when the request says 0.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Larger requests are clamped to this.
pub const MAX_PAGE_SIZE: i64 = 1000;
/// Longest page token accepted, in bytes: longer ones are refused before they are
/// decoded. The tokens we issue hold the last row's value of each `order_by` field
/// ([`crate::order::MAX_ORDER_TERMS`] and `id`); ordered fields are short (names,
/// numbers, times: at most 1000 characters each by the input bounds), so even five of
/// them escaped and encoded stay below it.
pub const MAX_PAGE_TOKEN_LEN: usize = 64 * 1024;

/// 0 → the default, above the maximum → the maximum, negative → an error message.
pub fn page_size(requested: i32) -> Result<i64, String> {
    match i64::from(requested) {
        n if n < 0 => Err("must not be negative".to_owned()),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok(n.min(MAX_PAGE_SIZE)),
    }
}

/// Signs and checks page tokens with a per-deployment secret.
#[derive(Clone)]
pub struct PageTokenCodec {
    key: Vec<u8>,
}

impl std::fmt::Debug for PageTokenCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokenCodec(..)")
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// Digest of the query the token continues.
    q: String,
    /// The last row's keyset values, as text (NULL as `None`).
    k: Vec<Option<String>>,
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token we issued, or edited since.
    Invalid,
    /// Issued for a different filter, order or show_deleted.
    WrongQuery,
}

impl PageTokenCodec {
    /// A codec keyed with `secret` (at least 16 bytes recommended).
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: secret.to_vec(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts keys of any length")
    }

    /// Digest identifying a query; tokens are only valid for the same digest.
    pub fn query_digest(parts: &[&str]) -> String {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        URL_SAFE_NO_PAD.encode(&hasher.finalize()[..16])
    }

    /// Encodes the cursor of the last row of a page.
    pub fn encode(&self, query_digest: &str, cursor: Vec<Option<String>>) -> String {
        let payload = serde_json::to_vec(&Payload {
            q: query_digest.to_owned(),
            k: cursor,
        })
        .expect("a payload of strings serializes");
        let mut mac = self.mac();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Checks a token and returns its cursor.
    pub fn decode(
        &self,
        query_digest: &str,
        token: &str,
    ) -> Result<Vec<Option<String>>, TokenError> {
        if token.len() > MAX_PAGE_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let (payload, tag) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Invalid)?;
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_slice(&tag).map_err(|_| TokenError::Invalid)?;
        let payload: Payload = serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)?;
        if payload.q != query_digest {
            return Err(TokenError::WrongQuery);
        }
        Ok(payload.k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_rules() {
        assert_eq!(page_size(0), Ok(50));
        assert_eq!(page_size(7), Ok(7));
        assert_eq!(page_size(5000), Ok(1000));
        assert!(page_size(-1).is_err());
    }

    #[test]
    fn a_token_round_trips_only_for_its_query() {
        let codec = PageTokenCodec::new(b"0123456789abcdef");
        let q = PageTokenCodec::query_digest(&["status = new", "id", "false"]);
        let token = codec.encode(&q, vec![Some("2026-01-01".into()), None, Some("42".into())]);
        assert_eq!(codec.decode(&q, &token).unwrap()[2].as_deref(), Some("42"));
        let other = PageTokenCodec::query_digest(&["status = old", "id", "false"]);
        assert_eq!(codec.decode(&other, &token), Err(TokenError::WrongQuery));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_invalid() {
        let codec = PageTokenCodec::new(b"0123456789abcdef");
        let q = PageTokenCodec::query_digest(&[""]);
        let token = codec.encode(&q, vec![Some("1".into())]);
        let (payload, tag) = token.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"q":"x","k":["999"]}"#);
        assert_eq!(
            codec.decode(&q, &format!("{forged_payload}.{tag}")),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            codec.decode(&q, &format!("{payload}.AAAA")),
            Err(TokenError::Invalid)
        );
        assert_eq!(codec.decode(&q, "garbage"), Err(TokenError::Invalid));
        let stranger = PageTokenCodec::new(b"another-secret!!");
        assert_eq!(stranger.decode(&q, &token), Err(TokenError::Invalid));
    }

    #[test]
    fn overlong_tokens_are_refused_before_decoding() {
        let codec = PageTokenCodec::new(b"0123456789abcdef");
        let q = PageTokenCodec::query_digest(&[""]);
        let long = "A".repeat(MAX_PAGE_TOKEN_LEN + 1);
        assert_eq!(codec.decode(&q, &long), Err(TokenError::Invalid));
    }

    proptest::proptest! {
        #[test]
        fn any_string_is_refused_without_panic(token in "\\PC{0,300}|[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}") {
            let codec = PageTokenCodec::new(b"0123456789abcdef");
            let q = PageTokenCodec::query_digest(&["q"]);
            proptest::prop_assert_eq!(codec.decode(&q, &token), Err(TokenError::Invalid));
        }

        #[test]
        fn any_cursor_round_trips_and_any_edit_is_refused(
            cursor in proptest::collection::vec(proptest::option::of("\\PC{0,40}"), 0..6),
            at in proptest::num::usize::ANY,
            with in "[A-Za-z0-9_.-]",
        ) {
            let codec = PageTokenCodec::new(b"0123456789abcdef");
            let q = PageTokenCodec::query_digest(&["q"]);
            let token = codec.encode(&q, cursor.clone());
            proptest::prop_assert!(token.len() <= MAX_PAGE_TOKEN_LEN);
            proptest::prop_assert_eq!(codec.decode(&q, &token), Ok(cursor));
            let at = at % token.len();
            if token[at..].chars().next() != with.chars().next() {
                let mut edited = token.clone();
                edited.replace_range(at..=at, &with);
                proptest::prop_assert!(codec.decode(&q, &edited).is_err());
            }
        }
    }
}
