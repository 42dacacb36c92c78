//! Revoked access tokens: the deny list every token check consults, and the guard that
//! ends a server stream when its caller's token expires or is revoked.
//!
//! An access token is a signed statement that lives its whole lifetime (15 minutes by
//! default). When identity deactivates, deletes or logs out a user, changes or takes
//! away a role, or makes a tenant inactive, it publishes `identity.access.revoked`
//! (fusion-events' `revocations` follows it into every process that checks tokens:
//! the edge and each service). Each such revocation says "tokens of this user / with
//! this role / of this tenant issued before `not_before` are void"; [`Revocations`]
//! keeps one entry per subject, with the latest `not_before`, until every token it
//! could concern has expired anyway, so the list stays as small as the revocations of
//! one token lifetime. A token issued after the revocation (a new login, a refresh
//! carrying the roles as they are now) is not affected.
//!
//! A server stream outlives the check made when it opened: [`TokenLease::guard`] ends
//! it with UNAUTHENTICATED (`TOKEN_EXPIRED` or [`TOKEN_REVOKED`]) when the token that
//! opened it expires or is revoked.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use tokio::sync::watch;
use tonic::Status;

use fusion_proto::errors;

use crate::Claims;

/// The reason a revoked token is refused.
pub const TOKEN_REVOKED: &str = "TOKEN_REVOKED";

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whose tokens a revocation concerns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// Every token of the tenant.
    Tenant(i64),
    /// The tokens of one user (or service account) of the tenant.
    User {
        /// The tenant.
        tenant_id: i64,
        /// The user.
        user_id: i64,
    },
    /// The tokens of the tenant carrying a role name.
    Role {
        /// The tenant.
        tenant_id: i64,
        /// The role's name, as tokens carry it.
        name: String,
    },
}

/// One revocation: tokens of `subject` issued before `not_before_ms` are void, and
/// after `expires_ms` none of them is valid anyway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// Whose tokens.
    pub subject: Subject,
    /// Tokens issued before this (milliseconds since the epoch) are refused.
    pub not_before_ms: u64,
    /// When the entry may be forgotten (milliseconds since the epoch).
    pub expires_ms: u64,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    not_before_ms: u64,
    expires_ms: u64,
}

/// The deny list of one process: the revocations of the last token lifetime.
#[derive(Debug)]
pub struct Revocations {
    entries: Mutex<HashMap<Subject, Entry>>,
    /// Bumped on every revocation, so open streams check their token again.
    changed: watch::Sender<u64>,
    /// Clock skew forgiven on expiry: an entry outlives its `expires_ms` by this much,
    /// as tokens outlive their `exp`.
    leeway_ms: u64,
}

impl Default for Revocations {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

impl Revocations {
    /// An empty list; entries are kept `leeway` past their expiry (the verifier's
    /// leeway on `exp`).
    pub fn new(leeway: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            changed: watch::Sender::new(0),
            leeway_ms: u64::try_from(leeway.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Records `revocation` (a later `not_before` wins; replaying one is harmless) and
    /// forgets the entries whose tokens have all expired. Returns whether the entry
    /// changed.
    pub fn revoke(&self, revocation: Revocation) -> bool {
        let now = now_ms();
        let changed = {
            let mut entries = self.entries.lock().expect("revocations lock");
            let leeway = self.leeway_ms;
            entries.retain(|_, e| e.expires_ms.saturating_add(leeway) > now);
            if revocation.expires_ms.saturating_add(leeway) <= now {
                return false;
            }
            let entry = entries.entry(revocation.subject).or_insert(Entry {
                not_before_ms: 0,
                expires_ms: 0,
            });
            let changed = revocation.not_before_ms > entry.not_before_ms;
            entry.not_before_ms = entry.not_before_ms.max(revocation.not_before_ms);
            entry.expires_ms = entry.expires_ms.max(revocation.expires_ms);
            changed
        };
        if changed {
            self.changed.send_modify(|n| *n += 1);
        }
        changed
    }

    /// How many entries the list holds.
    pub fn len(&self) -> usize {
        self.entries.lock().expect("revocations lock").len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// UNAUTHENTICATED [`TOKEN_REVOKED`] when a revocation covers the token of
    /// `claims`: of its tenant, its subject or one of its roles, issued before the
    /// revocation.
    pub fn check(&self, claims: &Claims) -> Result<(), Status> {
        let issued = claims.issued_at_ms();
        let entries = self.entries.lock().expect("revocations lock");
        if entries.is_empty() {
            return Ok(());
        }
        let revoked = |subject: &Subject| {
            entries
                .get(subject)
                .is_some_and(|e| issued < e.not_before_ms)
        };
        let user = claims.sub.parse::<i64>().ok();
        let hit = revoked(&Subject::Tenant(claims.tid))
            || user.is_some_and(|user_id| {
                revoked(&Subject::User {
                    tenant_id: claims.tid,
                    user_id,
                })
            })
            || claims.roles.iter().any(|name| {
                revoked(&Subject::Role {
                    tenant_id: claims.tid,
                    name: name.clone(),
                })
            });
        if hit { Err(revoked_status()) } else { Ok(()) }
    }

    /// A receiver that sees a change on every new revocation.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

fn revoked_status() -> Status {
    errors::unauthenticated(
        TOKEN_REVOKED,
        "the token was revoked (sign-out, deactivation, or a change of roles or of the tenant); sign in again or refresh",
    )
}

fn expired_status() -> Status {
    errors::unauthenticated("TOKEN_EXPIRED", "token expired")
}

/// The token a call was authenticated with, for as long as the call lasts: the server
/// layer puts it in the request's extensions.
#[derive(Clone, Debug)]
pub struct TokenLease {
    claims: Arc<Claims>,
    revocations: Option<Arc<Revocations>>,
}

/// A boxed server stream, as tonic handlers return them.
pub type LeasedStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl TokenLease {
    /// The lease of a token with `claims`, checked against `revocations`.
    pub fn new(claims: Claims, revocations: Option<Arc<Revocations>>) -> Self {
        Self {
            claims: Arc::new(claims),
            revocations,
        }
    }

    /// The lease the server layer attached to `request`, if it authenticated one.
    pub fn of<T>(request: &tonic::Request<T>) -> Option<TokenLease> {
        request.extensions().get::<TokenLease>().cloned()
    }

    /// Whether the token is still good: not expired, not revoked.
    pub fn check(&self) -> Result<(), Status> {
        if self.claims.exp.saturating_mul(1000) <= now_ms() {
            return Err(expired_status());
        }
        match &self.revocations {
            Some(revocations) => revocations.check(&self.claims),
            None => Ok(()),
        }
    }

    /// `stream`, ended with UNAUTHENTICATED (`TOKEN_EXPIRED` / [`TOKEN_REVOKED`]) as
    /// soon as the token expires or is revoked; until then its items pass unchanged.
    pub fn guard<T, S>(self, stream: S) -> LeasedStream<T>
    where
        T: Send + 'static,
        S: Stream<Item = Result<T, Status>> + Send + 'static,
    {
        let expiry = Duration::from_millis(
            self.claims
                .exp
                .saturating_mul(1000)
                .saturating_sub(now_ms()),
        );
        let state = Guarded {
            inner: Box::pin(stream),
            changes: self.revocations.as_ref().map(|r| r.subscribe()),
            expires: Box::pin(tokio::time::sleep(expiry)),
            lease: self,
            done: false,
        };
        Box::pin(futures::stream::unfold(state, |mut s| async move {
            if s.done {
                return None;
            }
            let item = s.next().await;
            Some((item?, s))
        }))
    }
}

/// `stream` ended when the token `request` was authenticated with expires or is
/// revoked: the one line a streaming handler needs. A request no token authenticated
/// (a public method) keeps its stream as it is.
pub fn end_with_token<T, S, R>(request: &tonic::Request<R>, stream: S) -> LeasedStream<T>
where
    T: Send + 'static,
    S: Stream<Item = Result<T, Status>> + Send + 'static,
{
    match TokenLease::of(request) {
        Some(lease) => lease.guard(stream),
        None => Box::pin(stream),
    }
}

struct Guarded<T> {
    inner: LeasedStream<T>,
    changes: Option<watch::Receiver<u64>>,
    expires: Pin<Box<tokio::time::Sleep>>,
    lease: TokenLease,
    done: bool,
}

impl<T> Guarded<T> {
    /// The next item of the stream, or the refusal that ends it.
    async fn next(&mut self) -> Option<Result<T, Status>> {
        loop {
            let changes = async {
                match self.changes.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => futures::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = &mut self.expires => {
                    self.done = true;
                    return Some(Err(expired_status()));
                }
                still = changes => {
                    if !still {
                        // The list is gone (the process is stopping): watch expiry only.
                        self.changes = None;
                    } else if let Err(status) = self.lease.check() {
                        self.done = true;
                        return Some(Err(status));
                    }
                }
                item = self.inner.next() => {
                    if item.is_none() {
                        self.done = true;
                    }
                    return item;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::JwtConfig;

    fn token(tenant: i64, user: i64, roles: &[&str]) -> Claims {
        Claims::new(
            &JwtConfig::default(),
            tenant,
            user,
            roles.iter().map(|r| (*r).to_owned()).collect(),
            Vec::new(),
            Duration::from_secs(60),
        )
    }

    fn revoke(list: &Revocations, subject: Subject, not_before_ms: u64) {
        list.revoke(Revocation {
            subject,
            not_before_ms,
            expires_ms: now_ms() + 60_000,
        });
    }

    #[test]
    fn a_revocation_refuses_the_tokens_it_names_issued_before_it_and_no_others() {
        let list = Revocations::default();
        let old = token(1, 2, &["sales"]);
        let neighbour = token(1, 3, &["admin"]);
        let elsewhere = token(9, 2, &["sales"]);
        assert!(list.check(&old).is_ok());
        let after = old.issued_at_ms() + 1;
        revoke(
            &list,
            Subject::User {
                tenant_id: 1,
                user_id: 2,
            },
            after,
        );
        let refused = list.check(&old).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert!(list.check(&neighbour).is_ok());
        assert!(list.check(&elsewhere).is_ok());
        // A token issued after the revocation (a new login) is fine.
        let mut fresh = token(1, 2, &["sales"]);
        fresh.iat_ms = Some(after + 1);
        fresh.iat = (after + 1) / 1000;
        assert!(list.check(&fresh).is_ok());

        revoke(
            &list,
            Subject::Role {
                tenant_id: 1,
                name: "admin".into(),
            },
            after,
        );
        assert!(list.check(&neighbour).is_err());
        revoke(&list, Subject::Tenant(9), after);
        assert!(list.check(&elsewhere).is_err());
    }

    #[test]
    fn a_token_without_milliseconds_reads_as_issued_at_the_start_of_its_second() {
        let list = Revocations::default();
        let mut old = token(1, 2, &[]);
        old.iat_ms = None;
        revoke(
            &list,
            Subject::User {
                tenant_id: 1,
                user_id: 2,
            },
            old.iat * 1000 + 1,
        );
        assert!(list.check(&old).is_err());
    }

    #[test]
    fn entries_are_forgotten_once_every_token_they_concern_has_expired() {
        let list = Revocations::new(Duration::ZERO);
        list.revoke(Revocation {
            subject: Subject::Tenant(1),
            not_before_ms: now_ms(),
            expires_ms: now_ms() - 1,
        });
        assert!(
            list.is_empty(),
            "an entry already past its expiry is not kept"
        );
        list.revoke(Revocation {
            subject: Subject::Tenant(2),
            not_before_ms: now_ms(),
            expires_ms: now_ms() + 60_000,
        });
        assert_eq!(list.len(), 1);
        // A later revocation prunes the entries past their expiry.
        {
            let mut entries = list.entries.lock().unwrap();
            entries.get_mut(&Subject::Tenant(2)).unwrap().expires_ms = now_ms() - 1;
        }
        revoke(&list, Subject::Tenant(3), now_ms());
        assert_eq!(list.len(), 1);
        assert!(
            list.entries
                .lock()
                .unwrap()
                .contains_key(&Subject::Tenant(3))
        );
    }

    #[tokio::test]
    async fn a_guarded_stream_passes_items_then_ends_when_its_token_is_revoked() {
        let list = Arc::new(Revocations::default());
        let claims = token(1, 2, &[]);
        let issued = claims.issued_at_ms();
        let lease = TokenLease::new(claims, Some(list.clone()));
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<u32, Status>>(4);
        let mut stream = lease.guard(tokio_stream::wrappers::ReceiverStream::new(rx));
        tx.send(Ok(1)).await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap(), 1);
        revoke(
            &list,
            Subject::User {
                tenant_id: 1,
                user_id: 2,
            },
            issued + 1,
        );
        let ended = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("the stream ends without another item")
            .unwrap()
            .unwrap_err();
        assert_eq!(ended.code(), tonic::Code::Unauthenticated);
        assert!(stream.next().await.is_none());
        drop(tx);
    }

    #[tokio::test]
    async fn a_guarded_stream_ends_when_its_token_expires() {
        let mut claims = token(1, 2, &[]);
        claims.exp = (now_ms() / 1000) + 1;
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<u32, Status>>(1);
        let mut stream =
            TokenLease::new(claims, None).guard(tokio_stream::wrappers::ReceiverStream::new(rx));
        let ended = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("the stream ends when the token expires, without another item")
            .unwrap()
            .unwrap_err();
        assert_eq!(ended.code(), tonic::Code::Unauthenticated);
        assert!(ended.message().contains("expired"));
        assert!(stream.next().await.is_none());
    }
}
