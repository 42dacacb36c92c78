//! Xero's limits, kept on our side per organisation, so that a burst of pushes waits its
//! turn instead of being answered 429.
//!
//! Xero counts, per organisation (its tenant id): calls in progress (5), calls in any
//! rolling minute (60) and in any rolling day (5,000). [`XeroLimiter::run`] holds a call
//! until all three have room, then makes it. A call counts against the windows from the
//! moment it is sent until a full window after its answer came back: Xero counted it
//! at some moment in between, so this never frees a slot before Xero does, and it costs
//! at most one round trip of throughput per window.
//!
//! When Xero answers 429 all the same (another process using the same organisation,
//! an app-wide limit), the organisation is blocked for the `Retry-After` it gave and the
//! call is made again, a bounded number of times ([`XeroLimits::attempts`]).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use uuid::Uuid;

use super::client::XeroError;
use super::config::XeroLimits;

/// The limits of every Xero organisation this process calls, each kept apart.
#[derive(Debug)]
pub struct XeroLimiter {
    limits: XeroLimits,
    gates: Mutex<HashMap<Uuid, Arc<Gate>>>,
}

/// One organisation's limits.
#[derive(Debug)]
struct Gate {
    in_progress: Arc<Semaphore>,
    windows: Mutex<Windows>,
    /// Woken whenever a call ends, which may free a slot.
    call_ended: Notify,
}

#[derive(Debug)]
struct Windows {
    minute: Window,
    day: Window,
    /// No call starts before this (a 429's `Retry-After`).
    blocked_until: Option<Instant>,
}

/// Calls within one rolling window: those still in progress and the end times of
/// those that ended (in order, since they are pushed under the lock).
#[derive(Debug)]
struct Window {
    limit: usize,
    length: std::time::Duration,
    in_progress: usize,
    ended: VecDeque<Instant>,
}

impl Window {
    fn new(limit: usize, length: std::time::Duration) -> Self {
        Self {
            limit,
            length,
            in_progress: 0,
            ended: VecDeque::new(),
        }
    }

    fn forget_before(&mut self, now: Instant) {
        while self
            .ended
            .front()
            .is_some_and(|&end| end + self.length <= now)
        {
            self.ended.pop_front();
        }
    }

    fn is_full(&self) -> bool {
        self.in_progress + self.ended.len() >= self.limit
    }

    /// When the oldest ended call leaves the window; `None` when every counted call is
    /// still in progress (only one ending frees a slot then).
    fn frees_at(&self) -> Option<Instant> {
        self.ended.front().map(|&end| end + self.length)
    }
}

/// What waiting for a slot depends on.
enum Wait {
    /// Until this instant, or until a call ends if that comes first.
    Until(Instant),
    /// Until a call ends.
    CallEnded,
}

impl Windows {
    /// Takes a slot in both windows, or says what to wait for.
    fn take(&mut self, now: Instant) -> Result<(), Wait> {
        if let Some(until) = self.blocked_until.filter(|&until| until > now) {
            return Err(Wait::Until(until));
        }
        self.minute.forget_before(now);
        self.day.forget_before(now);
        let full: Vec<&Window> = [&self.minute, &self.day]
            .into_iter()
            .filter(|w| w.is_full())
            .collect();
        if full.is_empty() {
            self.minute.in_progress += 1;
            self.day.in_progress += 1;
            return Ok(());
        }
        // Every full window must free a slot; the latest known moment is the earliest
        // worth waking for, and an ending call may come sooner.
        match full
            .iter()
            .map(|w| w.frees_at())
            .collect::<Option<Vec<_>>>()
        {
            Some(times) => Err(Wait::Until(
                times
                    .into_iter()
                    .max()
                    .expect("at least one window is full"),
            )),
            None => Err(Wait::CallEnded),
        }
    }

    fn end(&mut self, now: Instant) {
        for window in [&mut self.minute, &mut self.day] {
            window.in_progress -= 1;
            window.ended.push_back(now);
        }
    }
}

/// A call's place within its organisation's limits; dropping it ends the call.
struct Slot {
    gate: Arc<Gate>,
    _in_progress: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gate
            .windows
            .lock()
            .expect("the limiter's lock is never poisoned")
            .end(Instant::now());
        self.gate.call_ended.notify_waiters();
    }
}

impl XeroLimiter {
    /// A limiter keeping each organisation within `limits`.
    pub fn new(limits: XeroLimits) -> Self {
        Self {
            limits,
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// Makes `call` for organisation `tenant_id` once its limits have room, and again
    /// after the `Retry-After` of each 429 it gets, up to [`XeroLimits::attempts`] times
    /// in all; the last 429 is returned as it came.
    pub async fn run<T, F, Fut>(&self, tenant_id: Uuid, mut call: F) -> Result<T, XeroError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, XeroError>>,
    {
        let gate = self.gate(tenant_id);
        let mut attempt = 1;
        loop {
            let slot = Self::slot(&gate).await;
            let result = call().await;
            drop(slot);
            match result {
                Err(XeroError::RateLimited { retry_after, .. }) => {
                    Self::block(&gate, retry_after);
                    if attempt >= self.limits.attempts {
                        return result;
                    }
                    attempt += 1;
                    tracing::info!(%tenant_id, ?retry_after, attempt, "Xero answered 429; waiting");
                }
                result => return result,
            }
        }
    }

    fn gate(&self, tenant_id: Uuid) -> Arc<Gate> {
        let mut gates = self
            .gates
            .lock()
            .expect("the limiter's lock is never poisoned");
        gates
            .entry(tenant_id)
            .or_insert_with(|| {
                Arc::new(Gate {
                    in_progress: Arc::new(Semaphore::new(self.limits.concurrent)),
                    windows: Mutex::new(Windows {
                        minute: Window::new(self.limits.per_minute, self.limits.minute),
                        day: Window::new(self.limits.per_day, self.limits.day),
                        blocked_until: None,
                    }),
                    call_ended: Notify::new(),
                })
            })
            .clone()
    }

    /// Waits for a slot: first one of the calls in progress, then room in both windows
    /// (taken in that order so that the windows count a call from when it is sent).
    async fn slot(gate: &Arc<Gate>) -> Slot {
        let permit = gate
            .in_progress
            .clone()
            .acquire_owned()
            .await
            .expect("the limiter never closes its semaphore");
        loop {
            // Registered before the windows are read, so an ending in between is seen.
            let call_ended = gate.call_ended.notified();
            tokio::pin!(call_ended);
            call_ended.as_mut().enable();
            let taken = gate
                .windows
                .lock()
                .expect("the limiter's lock is never poisoned")
                .take(Instant::now());
            match taken {
                Ok(()) => {
                    return Slot {
                        gate: gate.clone(),
                        _in_progress: permit,
                    };
                }
                Err(Wait::Until(until)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        () = &mut call_ended => {}
                    }
                }
                Err(Wait::CallEnded) => call_ended.await,
            }
        }
    }

    fn block(gate: &Gate, retry_after: std::time::Duration) {
        let until = Instant::now() + retry_after;
        let mut windows = gate
            .windows
            .lock()
            .expect("the limiter's lock is never poisoned");
        windows.blocked_until = Some(windows.blocked_until.map_or(until, |b| b.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::super::client::RateLimitProblem;
    use super::*;

    fn limits(concurrent: usize, per_minute: usize, per_day: usize) -> XeroLimits {
        XeroLimits {
            concurrent,
            per_minute,
            per_day,
            minute: Duration::from_secs(60),
            day: Duration::from_secs(24 * 3600),
            attempts: 3,
        }
    }

    /// Starts `n` calls at once, each lasting `lasting`, and returns when each started,
    /// in seconds after the first could have.
    async fn start_times(limiter: Arc<XeroLimiter>, n: usize, lasting: Duration) -> Vec<u64> {
        let t0 = Instant::now();
        let tenant = Uuid::from_u128(1);
        let calls = (0..n).map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                limiter
                    .run(tenant, || async {
                        let started = t0.elapsed().as_secs();
                        tokio::time::sleep(lasting).await;
                        Ok::<_, XeroError>(started)
                    })
                    .await
                    .unwrap()
            })
        });
        let mut started: Vec<u64> = futures::future::try_join_all(calls).await.unwrap();
        started.sort_unstable();
        started
    }

    #[tokio::test(start_paused = true)]
    async fn calls_past_the_minute_limit_wait_for_the_window_to_roll() {
        let limiter = Arc::new(XeroLimiter::new(limits(5, 3, 5000)));
        let started = start_times(limiter, 7, Duration::ZERO).await;
        assert_eq!(started, [0, 0, 0, 60, 60, 60, 120]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_counts_in_the_window_until_a_window_after_it_ended() {
        let limiter = Arc::new(XeroLimiter::new(limits(5, 1, 5000)));
        let started = start_times(limiter, 2, Duration::from_secs(90)).await;
        assert_eq!(started, [0, 150]);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_past_the_day_limit_wait_a_day() {
        let limiter = Arc::new(XeroLimiter::new(limits(5, 60, 4)));
        let started = start_times(limiter, 5, Duration::ZERO).await;
        assert_eq!(started, [0, 0, 0, 0, 24 * 3600]);
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_calls_are_in_progress_than_the_concurrent_limit() {
        let limiter = Arc::new(XeroLimiter::new(limits(2, 60, 5000)));
        let started = start_times(limiter, 5, Duration::from_secs(10)).await;
        assert_eq!(started, [0, 0, 10, 10, 20]);
    }

    #[tokio::test(start_paused = true)]
    async fn organisations_have_limits_of_their_own() {
        let limiter = XeroLimiter::new(limits(5, 1, 5000));
        let t0 = Instant::now();
        for tenant in [1, 2, 3] {
            limiter
                .run(Uuid::from_u128(tenant), || async { Ok::<_, XeroError>(()) })
                .await
                .unwrap();
        }
        assert_eq!(t0.elapsed(), Duration::ZERO);
    }

    fn rate_limited(seconds: u64) -> XeroError {
        XeroError::RateLimited {
            retry_after: Duration::from_secs(seconds),
            problem: RateLimitProblem::Minute,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_blocks_the_organisation_for_its_retry_after_then_the_call_is_made_again() {
        let limiter = Arc::new(XeroLimiter::new(limits(5, 60, 5000)));
        let tenant = Uuid::from_u128(1);
        let t0 = Instant::now();
        let attempts = AtomicUsize::new(0);
        let first = limiter.run(tenant, || {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst);
            async move {
                if attempt == 0 {
                    Err(rate_limited(30))
                } else {
                    Ok(t0.elapsed())
                }
            }
        });
        // Another call to the same organisation, sent after the 429, waits as well;
        // one to another organisation does not.
        let same = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            limiter
                .run(tenant, || async { Ok::<_, XeroError>(t0.elapsed()) })
                .await
        };
        let other = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            limiter
                .run(Uuid::from_u128(2), || async {
                    Ok::<_, XeroError>(t0.elapsed())
                })
                .await
        };
        let (first, same, other) = tokio::join!(first, same, other);
        assert_eq!(first.unwrap(), Duration::from_secs(30));
        assert_eq!(same.unwrap(), Duration::from_secs(30));
        assert_eq!(other.unwrap(), Duration::from_secs(1));
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_answered_429_every_time_gives_up_after_its_attempts() {
        let limiter = XeroLimiter::new(limits(5, 60, 5000));
        let t0 = Instant::now();
        let attempts = AtomicUsize::new(0);
        let result: Result<(), _> = limiter
            .run(Uuid::from_u128(1), || {
                attempts.fetch_add(1, Ordering::SeqCst);
                async { Err(rate_limited(5)) }
            })
            .await;
        assert!(matches!(result, Err(XeroError::RateLimited { .. })));
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert_eq!(t0.elapsed(), Duration::from_secs(10));
    }
}
