//! Finance: `InvoiceService/CreateInvoice` with 10 lines (each priced, rounded and
//! summed by the server, numbered under the tenant's counter row), straight to finance
//! and through the edge, at 1 and 16 concurrent streams, in one run.
//!
//! `cargo run --release -p fusion-e2e --bin fusion-bench-finance [seconds-per-cell]`
//!
//! Every service runs in this process beside the load generator (PostgreSQL aside):
//! compare the cells of one run, not machines. At 16 streams the calls of one tenant
//! queue on its invoice counter, which is what gapless numbering costs; the
//! `16 tenants` row spreads the same load over sixteen tenants' counters.

mod stats;

use std::time::{Duration, Instant};

use tonic::transport::Channel;

use fusion_e2e::{Login, Stack, with_token};
use fusion_proto::finance::v1 as pb;
use fusion_proto::finance::v1::invoice_service_client::InvoiceServiceClient;
use stats::{Cell, ms};

/// An invoice of ten lines at mixed tax rates.
fn invoice() -> pb::Invoice {
    pb::Invoice {
        line_items: (0..10)
            .map(|i| pb::InvoiceLineItem {
                description: format!("Line {i}"),
                quantity: format!("{}", 1 + i % 3),
                unit_price: format!("{}.{:02}", 100 + i * 37, (i * 13) % 100),
                tax_rate: if i % 2 == 0 { "10".into() } else { "0".into() },
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

async fn run(channel: Channel, callers: &[Login], direct: bool, streams: usize, secs: u64) -> Cell {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..streams)
        .map(|i| {
            let mut client = InvoiceServiceClient::new(channel.clone());
            let caller = callers[i % callers.len()].clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let mut req = with_token(
                        &caller.token,
                        pb::CreateInvoiceRequest {
                            invoice: Some(invoice()),
                            request_id: String::new(),
                        },
                    );
                    if direct {
                        // What the edge adds for a service behind it.
                        req.metadata_mut().insert(
                            "x-tenant-id",
                            caller.tenant_id.to_string().parse().expect("digits"),
                        );
                    }
                    let started = Instant::now();
                    client
                        .create_invoice(req)
                        .await
                        .expect("CreateInvoice succeeds under load");
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("load task"));
    }
    Cell::over(all, Duration::from_secs(secs))
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let stack = Stack::spawn(|c| {
        c.rate_per_second = 1e9;
        c.rate_burst = 1e9;
        c.max_concurrency = 10_000;
    })
    .await;
    let acme = stack.login("admin@acme.test").await.expect("login");
    let direct = fusion_testkit::connect_channel(stack.finance.grpc_addr()).await;
    let edge = stack.channel.clone();
    let one = vec![acme.clone()];
    // Sixteen tenants, each with its own counter, for the row that spreads the load.
    let many = stack.tenants(16).await;
    // Warm both paths (connections, key cache, statement cache).
    run(direct.clone(), &one, true, 4, 1).await;
    run(edge.clone(), &one, false, 4, 1).await;

    println!(
        "| streams | direct req/s | direct p50 ms | direct p99 ms | edge req/s | edge p50 ms | edge p99 ms | edge/direct throughput | added p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (label, streams, callers) in [
        ("1", 1, &one),
        ("16, one tenant", 16, &one),
        ("16, 16 tenants", 16, &many),
    ] {
        let d = run(direct.clone(), callers, true, streams, secs).await;
        let e = run(edge.clone(), callers, false, streams, secs).await;
        println!(
            "| {label} | {:.0} | {} | {} | {:.0} | {} | {} | {:.0}% | {} |",
            d.rps,
            ms(d.p50),
            ms(d.p99),
            e.rps,
            ms(e.p50),
            ms(e.p99),
            100.0 * e.rps / d.rps,
            ms(e.p99.saturating_sub(d.p99)),
        );
    }
}
