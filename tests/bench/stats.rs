//! The latency summary both load generators print.

use std::time::Duration;

/// Throughput and latency of one cell of a run.
pub struct Cell {
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
}

impl Cell {
    /// Summarises the latencies of every call made in `elapsed`.
    pub fn over(mut all: Vec<Duration>, elapsed: Duration) -> Cell {
        all.sort();
        let pick = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
        Cell {
            rps: all.len() as f64 / elapsed.as_secs_f64(),
            p50: pick(0.50),
            p99: pick(0.99),
        }
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}
