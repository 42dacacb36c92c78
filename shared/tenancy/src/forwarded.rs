//! The client address the edge vouches for.
//!
//! Every service port is reachable from inside the cluster, so neither the peer address
//! nor a header a caller wrote says where a call really came from. The edge knows the
//! client's address (the TCP peer of the client's connection); it sends it in
//! [`CLIENT_ADDR`] with an HMAC-SHA256 under a secret only the edge and the services
//! share (`FUSION_FORWARDING_SECRET`), over the method's path, the time and the address.
//! A service that verifies the tag trusts the address; anything else (no header, a
//! client's own `x-forwarded-for`, a wrong tag, a tag older than [`MAX_AGE_SECS`] or
//! made for another method) is ignored and the service uses its TCP peer. The edge
//! drops every client-sent `x-fusion-*` header, so a client cannot send one through it.
//!
//! A tag seen on the wire can be replayed only for the same method, the same address
//! and within [`MAX_AGE_SECS`]: it claims nothing new.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::HeaderValue;
use sha2::Sha256;

/// `x-fusion-client-addr: <ip>;<unix seconds>;<tag>`, set by the edge only.
pub const CLIENT_ADDR: &str = "x-fusion-client-addr";

/// How far a tag's time may be from the verifier's clock, either way: clock skew
/// between edge and service plus the time a call spends in flight.
pub const MAX_AGE_SECS: u64 = 60;

/// The shortest secret accepted: 32 random characters carry well over 128 bits.
pub const SECRET_MIN: usize = 32;

/// The secret the edge signs client addresses with and the services verify them with.
#[derive(Clone)]
pub struct ForwardingKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for ForwardingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForwardingKey(<redacted>)")
    }
}

impl ForwardingKey {
    /// A key from `secret`; `None` when it is shorter than [`SECRET_MIN`] characters.
    pub fn new(secret: &str) -> Option<Self> {
        (secret.chars().count() >= SECRET_MIN).then(|| Self {
            mac: Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes a key of any length"),
        })
    }

    fn tag(&self, path: &str, at: u64, addr: &str) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(format!("fusion-client-addr-v1\n{path}\n{at}\n{addr}").as_bytes());
        mac
    }

    /// The [`CLIENT_ADDR`] value vouching that the call to `path` came from `addr` at
    /// `now` (seconds since the epoch).
    pub fn sign(&self, path: &str, addr: IpAddr, now: u64) -> HeaderValue {
        let addr = addr.to_string();
        let tag = URL_SAFE_NO_PAD.encode(self.tag(path, now, &addr).finalize().into_bytes());
        HeaderValue::from_str(&format!("{addr};{now};{tag}"))
            .expect("an address, digits and base64url are a valid header value")
    }

    /// The address a [`CLIENT_ADDR`] value vouches for on a call to `path`, if its tag
    /// is this key's and its time within [`MAX_AGE_SECS`] of `now`.
    pub fn verify(&self, path: &str, value: &str, now: u64) -> Option<IpAddr> {
        let mut parts = value.split(';');
        let (addr, at, tag) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let at: u64 = at.parse().ok()?;
        if at.abs_diff(now) > MAX_AGE_SECS {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // verify_slice compares in constant time.
        self.tag(path, at, addr).verify_slice(&tag).ok()?;
        addr.parse().ok()
    }
}

/// Seconds since the epoch, the clock tags are made and checked with.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/fusion.identity.v1.AuthService/Login";

    fn key(secret: &str) -> ForwardingKey {
        ForwardingKey::new(secret).unwrap()
    }

    #[test]
    fn a_signed_address_verifies_for_its_method_within_the_window() {
        let k = key(&"s".repeat(32));
        let addr: IpAddr = "203.0.113.7".parse().unwrap();
        let value = k.sign(PATH, addr, 1_000);
        let value = value.to_str().unwrap();
        assert_eq!(k.verify(PATH, value, 1_000), Some(addr));
        assert_eq!(k.verify(PATH, value, 1_000 + MAX_AGE_SECS), Some(addr));
        assert_eq!(k.verify(PATH, value, 1_000 - MAX_AGE_SECS), Some(addr));
        assert_eq!(k.verify(PATH, value, 1_001 + MAX_AGE_SECS), None);
        assert_eq!(
            k.verify("/fusion.identity.v1.AuthService/Refresh", value, 1_000),
            None
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let value = k.sign(PATH, v6, 5);
        assert_eq!(k.verify(PATH, value.to_str().unwrap(), 5), Some(v6));
    }

    #[test]
    fn another_key_an_edited_address_or_a_bare_address_is_not_trusted() {
        let k = key(&"s".repeat(32));
        let other = key(&"t".repeat(32));
        let value = k.sign(PATH, "203.0.113.7".parse().unwrap(), 1_000);
        let value = value.to_str().unwrap();
        assert_eq!(other.verify(PATH, value, 1_000), None);
        let edited = value.replacen("203.0.113.7", "198.51.100.1", 1);
        assert_eq!(k.verify(PATH, &edited, 1_000), None);
        for forged in ["203.0.113.7", "203.0.113.7;1000", "", ";;", "a;b;c;d"] {
            assert_eq!(k.verify(PATH, forged, 1_000), None, "{forged}");
        }
    }

    #[test]
    fn short_secrets_are_refused_and_the_debug_form_hides_the_key() {
        assert!(ForwardingKey::new(&"s".repeat(31)).is_none());
        let shown = format!("{:?}", key(&"secret".repeat(8)));
        assert!(!shown.contains("secret"), "{shown}");
    }
}
