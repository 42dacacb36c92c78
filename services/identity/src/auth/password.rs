//! Password hashing: argon2id with the OWASP-recommended parameters
//! (m = 19 MiB, t = 2, p = 1), PHC strings so parameters can be raised later
//! without invalidating stored hashes.
//!
//! Requests hash through a [`Hasher`]: the work runs on tokio's blocking pool (an
//! argon2 run takes a core for tens of milliseconds and must not stall the tasks that
//! share a runtime thread), at most a configured number at once, and a call that
//! cannot get a slot within a short wait is refused with RESOURCE_EXHAUSTED instead of
//! queueing: a flood of logins costs its senders retries, not everyone's latency and
//! memory.

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::config::HashingConfig;
use crate::error::IdentityError;

/// Runs password hashing on the blocking pool, a bounded number at once.
#[derive(Clone, Debug)]
pub struct Hasher {
    slots: Arc<Semaphore>,
    max_wait: Duration,
}

impl Hasher {
    /// A hasher with `config.max_concurrent` slots (at least one).
    pub fn new(config: &HashingConfig) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            max_wait: config.max_wait,
        }
    }

    /// Runs `work` on the blocking pool once a slot is free; HASHING_BUSY when none
    /// frees up within the configured wait. The slot is held by the blocking task
    /// itself, so a caller that goes away does not free it before the work ends.
    pub async fn run<T, F>(&self, work: F) -> Result<T, IdentityError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let slot =
            match tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned()).await {
                Ok(Ok(slot)) => slot,
                Ok(Err(_)) | Err(_) => {
                    return Err(IdentityError::HashingBusy {
                        retry_after: Duration::from_secs(1),
                    });
                }
            };
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await
        .map_err(|e| IdentityError::internal("a password hashing task failed", e))
    }

    /// [`hash_password`] in a slot.
    pub async fn hash(&self, password: &str) -> Result<String, IdentityError> {
        let password = password.to_owned();
        self.run(move || hash_password(&password)).await?
    }

    /// [`verify_password`] in a slot.
    pub async fn verify(&self, stored_hash: &str, password: &str) -> Result<bool, IdentityError> {
        let (stored_hash, password) = (stored_hash.to_owned(), password.to_owned());
        self.run(move || verify_password(&stored_hash, &password))
            .await
    }

    /// [`verify_against_dummy`] in a slot: an unknown account costs a slot too.
    pub async fn verify_against_dummy(&self, password: &str) -> Result<(), IdentityError> {
        let password = password.to_owned();
        self.run(move || verify_against_dummy(&password)).await
    }
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a password nobody has, verified against when the account does not
/// exist so that an unknown email costs the same time as a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("not-a-real-password").expect("hashing a constant succeeds"));

/// Hashes `password` as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`). A failure
/// is identity's fault, never the caller's.
pub fn hash_password(password: &str) -> Result<String, IdentityError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| IdentityError::internal("hashing a password failed", e.to_string()))
}

/// Checks `password` against a stored PHC hash; a malformed hash never verifies.
pub fn verify_password(stored_hash: &str, password: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Burns the same work as [`verify_password`] for an account that does not exist.
pub fn verify_against_dummy(password: &str) {
    let _ = verify_password(&DUMMY_HASH, password);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct hors"));
    }

    fn hasher(slots: usize) -> Hasher {
        Hasher::new(&HashingConfig {
            max_concurrent: slots,
            max_wait: Duration::from_millis(50),
        })
    }

    /// Blocks a slot of `hasher` until the returned sender is dropped, and returns once
    /// the blocking work has started (so the slot is surely taken).
    async fn occupy(
        hasher: &Hasher,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), IdentityError>>,
    ) {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, has_started) = tokio::sync::oneshot::channel();
        let h = hasher.clone();
        let task = tokio::spawn(async move {
            h.run(move || {
                let _ = started.send(());
                let _ = released.recv();
            })
            .await
        });
        has_started.await.expect("the blocking work starts");
        (release, task)
    }

    #[tokio::test]
    async fn a_full_hasher_refuses_quickly_and_serves_again_once_a_slot_frees() {
        let hasher = hasher(1);
        let (release, held) = occupy(&hasher).await;
        let refused = hasher.verify_against_dummy("x").await;
        assert!(
            matches!(refused, Err(IdentityError::HashingBusy { .. })),
            "{refused:?}"
        );
        drop(release);
        held.await.unwrap().unwrap();
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hasher.verify(&hash, "correct horse").await.unwrap());
    }

    #[tokio::test]
    async fn no_more_than_the_configured_number_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hasher = Hasher::new(&HashingConfig {
            max_concurrent: 2,
            max_wait: Duration::from_secs(60),
        });
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let (h, running, most) = (hasher.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    h.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        let _ = verify_password(&DUMMY_HASH, "x");
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 2, "{most:?}");
    }

    #[test]
    fn a_malformed_hash_never_verifies() {
        assert!(!verify_password("not-a-phc-string", "anything"));
    }
}
