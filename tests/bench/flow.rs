//! The won deal that sells its lot, end to end through the edge: `DealService/WinDeal`
//! called by 1 and 16 concurrent writers, and for each won deal the time until its lot
//! reads `exchanged`.
//!
//! ```text
//! cargo run --release -p fusion-e2e --bin fusion-bench-flow [seconds-per-cell] [deals-per-cell]
//! ```
//!
//! Cells: 1 and 16 writers, each paced to 50 and then 150 WinDeal calls/s in all, then
//! in a closed loop (every writer calls again as soon as its call returns), which
//! finds the flow's capacity rather than its latency.
//!
//! ```text
//! ```
//!
//! Identity, property, crm, the edge, a private `nats-server -js` and the load
//! generator share the machine with PostgreSQL. The path measured for each deal: the
//! WinDeal call through the edge (crm commits the deal and its `crm.deal.won` outbox
//! row in one transaction) → crm's relay publishes it to JetStream → property's
//! `property-lot-sales` consumer moves the lot to exchanged in the event's tenant →
//! property's `NOTIFY` → `WatchLotAvailability` through the edge delivers the change.
//! The clock starts when WinDeal returns (after the commit, so the figure slightly
//! understates commit → effect) and stops when the watch stream reports the lot
//! exchanged, so the effect is observed through the public API without polling.
//! WinDeal's own latency is reported beside it.

mod stats;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use fusion_e2e::{Stack, with_token};
use fusion_proto::crm::v1 as crm;
use fusion_proto::crm::v1::deal_service_client::DealServiceClient;
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::lot_service_client::LotServiceClient;
use fusion_proto::property::v1::project_service_client::ProjectServiceClient;
use fusion_proto::property::v1::stage_service_client::StageServiceClient;
use stats::{Cell, ms};

/// Deals prepared per cell unless the second argument says otherwise: more than the
/// fastest cell wins in its seconds (a cell that runs out ends early).
const DEALS_PER_CELL: usize = 1_500;

/// The paced loads, WinDeal calls per second over all writers; `None` is a closed loop.
const LOADS: [Option<f64>; 3] = [Some(50.0), Some(150.0), None];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5);
    let per_cell: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(DEALS_PER_CELL);
    let stack = Stack::spawn_with_events(|config| {
        config.rate_per_second = 1e9;
        config.rate_burst = 1e9;
        config.max_concurrency = 10_000;
    })
    .await;
    let acme = stack.login("admin@acme.test").await?;
    let token = acme.token.clone();
    let edge = stack.channel.clone();

    println!(
        "| writers | load | WinDeal calls/s | WinDeal p50 ms | WinDeal p99 ms | won → exchanged p50 ms | won → exchanged p99 ms | exchanged / won |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let cells = LOADS
        .into_iter()
        .flat_map(|load| [1_usize, 16].map(|writers| (writers, load)));
    for (cell, (writers, load)) in cells.enumerate() {
        let (project_id, deals) = prepare(&edge, &token, cell, per_cell).await?;
        // The watcher: every lot of the cell's project that reaches exchanged.
        let seen: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
        let mut stream = LotServiceClient::new(edge.clone())
            .watch_lot_availability(with_token(
                &token,
                pb::WatchLotAvailabilityRequest { project_id },
            ))
            .await?
            .into_inner();
        let watcher = {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Ok(Some(event)) = stream.message().await {
                    if event.to_status == "exchanged" {
                        seen.lock().await.insert(event.lot_id, Instant::now());
                    }
                }
            })
        };

        let next = Arc::new(AtomicUsize::new(0));
        let deals = Arc::new(deals);
        let began = Instant::now();
        let deadline = began + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for _ in 0..writers {
            let (edge, token, next, deals) =
                (edge.clone(), token.clone(), next.clone(), deals.clone());
            tasks.push(tokio::spawn(async move {
                let mut client = DealServiceClient::new(edge);
                let mut won = Vec::new();
                // A paced writer calls every `writers / load` seconds, whatever its
                // calls take (they take far less).
                let mut pace = load.map(|rate| {
                    let mut pace =
                        tokio::time::interval(Duration::from_secs_f64(writers as f64 / rate));
                    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    pace
                });
                while Instant::now() < deadline {
                    if let Some(pace) = pace.as_mut() {
                        pace.tick().await;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(deal_id, lot_id)) = deals.get(i) else {
                        break;
                    };
                    let started = Instant::now();
                    client
                        .win_deal(with_token(
                            &token,
                            crm::WinDealRequest {
                                id: deal_id,
                                ..Default::default()
                            },
                        ))
                        .await
                        .expect("WinDeal");
                    won.push((lot_id, started, Instant::now()));
                }
                won
            }));
        }
        let mut won = Vec::new();
        for task in tasks {
            won.extend(task.await?);
        }
        let elapsed = began.elapsed();
        // Every won deal's lot must be exchanged; wait for the stragglers.
        let waited = Instant::now();
        loop {
            let seen = seen.lock().await;
            if won.iter().all(|(lot, _, _)| seen.contains_key(lot)) {
                break;
            }
            anyhow::ensure!(
                waited.elapsed() < Duration::from_secs(120),
                "{} of {} won deals' lots were not exchanged within 120 s",
                won.iter()
                    .filter(|(lot, _, _)| !seen.contains_key(lot))
                    .count(),
                won.len()
            );
            drop(seen);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        watcher.abort();
        let seen = seen.lock().await;
        let calls = Cell::over(won.iter().map(|(_, s, r)| *r - *s).collect(), elapsed);
        let flow = Cell::over(
            won.iter()
                .map(|(lot, _, returned)| seen[lot].saturating_duration_since(*returned))
                .collect(),
            elapsed,
        );
        println!(
            "| {writers} | {} | {:.0} | {} | {} | {} | {} | {}/{} |",
            load.map_or("closed loop".to_owned(), |rate| format!("paced, {rate}/s")),
            calls.rps,
            ms(calls.p50),
            ms(calls.p99),
            ms(flow.p50),
            ms(flow.p99),
            won.iter()
                .filter(|(lot, _, _)| seen.contains_key(lot))
                .count(),
            won.len()
        );
    }
    Ok(())
}

/// A project of its own for cell `cell`, with `count` available lots and an
/// open deal on each; returns the project and the (deal, lot) pairs.
async fn prepare(
    edge: &tonic::transport::Channel,
    token: &str,
    cell: usize,
    count: usize,
) -> anyhow::Result<(i64, Vec<(i64, i64)>)> {
    let project = ProjectServiceClient::new(edge.clone())
        .create_project(with_token(
            token,
            pb::CreateProjectRequest {
                project: Some(pb::Project {
                    name: format!("Bench estate {cell}"),
                    slug: format!("bench-estate-{cell}"),
                    status: "selling".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await?
        .into_inner();
    let stage = StageServiceClient::new(edge.clone())
        .create_stage(with_token(
            token,
            pb::CreateStageRequest {
                stage: Some(pb::Stage {
                    project_id: project.id,
                    name: "Stage 1".into(),
                    status: "selling".into(),
                    position: 1,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await?
        .into_inner();
    let mut pairs = Vec::with_capacity(count);
    let (mut lots, mut deals) = (
        LotServiceClient::new(edge.clone()),
        DealServiceClient::new(edge.clone()),
    );
    for n in 1..=count {
        let lot = lots
            .create_lot(with_token(
                token,
                pb::CreateLotRequest {
                    lot: Some(pb::Lot {
                        stage_id: stage.id,
                        lot_number: n.to_string(),
                        price: "550000.00".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await?
            .into_inner();
        let deal = deals
            .create_deal(with_token(
                token,
                crm::CreateDealRequest {
                    deal: Some(crm::Deal {
                        title: format!("Bench buyer — lot {n}"),
                        lot_id: lot.id,
                        value: "550000.00".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await?
            .into_inner();
        pairs.push((deal.id, lot.id));
    }
    Ok((project.id, pairs))
}
