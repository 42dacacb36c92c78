//! The deadline of the call being served, so work done for it stops when the caller
//! stops waiting.
//!
//! A gRPC client states how long it will wait in the `grpc-timeout` header. The server
//! layer (`fusion_service::limits`) turns it into an instant and runs the handler inside
//! [`scope`]; below it, [`remaining`] tells the database layer how long a statement may
//! run (`statement_timeout`) and the outbound client layer what `grpc-timeout` to send
//! downstream, so a call never works on past its own deadline at any hop.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The `grpc-timeout` header.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Runs `fut` with `deadline` as the current call's deadline (none: no deadline).
pub async fn scope<F: Future>(deadline: Option<Instant>, fut: F) -> F::Output {
    match deadline {
        Some(deadline) => DEADLINE.scope(deadline, fut).await,
        None => fut.await,
    }
}

/// The current call's deadline, if its caller set one.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// Time left before the current call's deadline (zero once it has passed); `None`
/// when the caller set no deadline.
pub fn remaining() -> Option<Duration> {
    current().map(|d| d.saturating_duration_since(Instant::now()))
}

/// Reads a `grpc-timeout` value (`<up to 8 digits><unit>`, unit one of `H M S m u n`,
/// per the gRPC HTTP/2 protocol); `None` when malformed.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Writes `timeout` as a `grpc-timeout` value, in milliseconds (rounded up, so a
/// downstream call never gets longer than what is left), or seconds when the
/// milliseconds would not fit the protocol's eight digits.
pub fn format_grpc_timeout(timeout: Duration) -> String {
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}S", timeout.as_secs().min(99_999_999))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_read_and_write() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("5u"), Some(Duration::from_micros(5)));
        for bad in ["", "m", "10", "10x", "-1m", "123456789m", " 1 m"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
        assert_eq!(format_grpc_timeout(Duration::from_micros(1500)), "2m");
        assert_eq!(format_grpc_timeout(Duration::from_secs(2)), "2000m");
        assert_eq!(format_grpc_timeout(Duration::from_secs(200_000)), "200000S");
        let long = format_grpc_timeout(Duration::from_secs(u64::MAX / 4));
        assert!(parse_grpc_timeout(&long).is_some(), "{long}");
    }

    #[tokio::test]
    async fn the_deadline_is_visible_inside_its_scope_only() {
        assert_eq!(remaining(), None);
        let deadline = Instant::now() + Duration::from_secs(5);
        scope(Some(deadline), async {
            let left = remaining().unwrap();
            assert!(left <= Duration::from_secs(5) && left > Duration::from_secs(4));
        })
        .await;
        assert_eq!(current(), None);
        scope(None, async { assert_eq!(remaining(), None) }).await;
    }
}
