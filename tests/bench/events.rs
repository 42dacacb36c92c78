//! Integration events under load, with the real plumbing (`fusion-events`) on a real
//! PostgreSQL and a private `nats-server -js`:
//!
//! 1. relay throughput: events/s from a full outbox to their PubAcks (rows claimed,
//!    published, acknowledged and marked sent), over `EVENTS` committed events;
//! 2. end to end: from the commit of a transaction that appends one `crm.deal.won` to
//!    the commit of a consumer's effect for it in its tenant (relay + JetStream +
//!    consumer with its inbox), p50/p99, with 1 and 16 writers, first paced to
//!    `PACED` events/s in all (below the consumer's capacity, as WinDeal calls are),
//!    then committing in a closed loop (which finds the consumer's capacity: one
//!    event at a time, to keep each aggregate's order, so a backlog builds up).
//!
//! ```text
//! cargo run --release -p fusion-e2e --bin fusion-bench-events [seconds-per-cell]
//! ```
//!
//! PostgreSQL, nats-server and this process share the machine.

mod stats;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;
use tokio::sync::watch;
use uuid::Uuid;

use fusion_db::TenantTx;
use fusion_events::consumer::Consumer;
use fusion_events::relay::Relay;
use fusion_events::{ConsumerConfig, Delivery, Event, EventMetrics, Handler, RelayConfig};
use fusion_proto::crm::v1::DealWon;
use fusion_testkit::{PrivateNats, TestDatabase};
use stats::{Cell, ms};

static CRM: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/crm");
static PROPERTY: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/property");

const EVENTS: i64 = 20_000;
const TENANTS: i64 = 10;
/// Events per second, all writers together, of the paced cells.
const PACED: u64 = 400;

fn won(deal_id: i64) -> Event {
    Event::new(
        "crm.deal.won",
        deal_id,
        &DealWon {
            deal_id,
            lot_id: deal_id,
            value: "549000.00".into(),
            stage: "won".into(),
            ..Default::default()
        },
    )
}

/// Records when each event's effect committed... as soon as its transaction does.
#[derive(Clone, Default)]
struct Clock(Arc<Mutex<Vec<(String, Instant)>>>);

impl Handler for Clock {
    async fn handle(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        let won: DealWon = event.payload()?;
        sqlx::query("INSERT INTO property.bench_effects (tenant_id, deal_id) VALUES ($1, $2)")
            .bind(tx.tenant_id())
            .bind(won.deal_id)
            .execute(&mut **tx)
            .await?;
        // The effect commits right after this returns; the difference is one COMMIT.
        self.0
            .lock()
            .unwrap()
            .push((event.envelope.event_id.clone(), Instant::now()));
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let db = TestDatabase::create(&[("crm", &CRM), ("property", &PROPERTY)]).await;
    let owner = PgPoolOptions::new()
        .max_connections(2)
        .connect(&db.owner_url)
        .await?;
    for sql in [
        "CREATE TABLE property.bench_effects (tenant_id bigint NOT NULL, deal_id bigint NOT NULL)",
        "ALTER TABLE property.bench_effects ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE property.bench_effects FORCE ROW LEVEL SECURITY",
        "CREATE POLICY tenant_isolation ON property.bench_effects
             USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint)
             WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint)",
        "GRANT SELECT, INSERT ON property.bench_effects TO fusion_property",
    ] {
        sqlx::query(sql).execute(&owner).await?;
    }
    // Crm writes the outbox as its role; property consumes as its own.
    let mut cfg = fusion_db::DbConfig::new(db.app_url("crm"));
    cfg.max_connections = 24;
    let app = fusion_db::Db::connect(&cfg).await?;
    cfg.url = db.app_url("property");
    let property = fusion_db::Db::connect(&cfg).await?;
    let nats = PrivateNats::start();
    let client = fusion_events::connect(&nats.url(), "fusion-bench-events").await?;

    // 1. Relay throughput.
    for chunk in 0..EVENTS / 500 {
        let mut tx = app.begin(1 + chunk % TENANTS).await?;
        for i in 0..500 {
            fusion_events::outbox::append(&mut tx, "crm", won(chunk * 500 + i)).await?;
        }
        tx.commit().await?;
    }
    let metrics = EventMetrics::new();
    let relay = Relay::new(
        owner.clone(),
        client.clone(),
        RelayConfig::new("crm"),
        metrics.clone(),
    );
    relay.run_once().await?; // creates the stream
    let started = Instant::now();
    let mut sent = metrics.relayed("crm") as i64;
    while sent < EVENTS {
        sent += relay.run_once().await?.sent as i64;
    }
    let elapsed = started.elapsed();
    println!(
        "relay: {EVENTS} events (batches of 500) in {:.2} s = {:.0} events/s",
        elapsed.as_secs_f64(),
        (EVENTS - 500) as f64 / elapsed.as_secs_f64()
    );

    // 2. End to end, commit → consumer effect.
    let (stop, stopped) = watch::channel(false);
    Relay::new(
        owner.clone(),
        client.clone(),
        RelayConfig::new("crm"),
        metrics.clone(),
    )
    .spawn(stopped.clone());
    let clock = Clock::default();
    let mut consumer = ConsumerConfig::new("property-bench", "property", &["crm.deal.won"]);
    consumer.fetch_wait = Duration::from_millis(500);
    // The throughput run's events are not measured: empty the stream first.
    async_nats::jetstream::new(client.clone())
        .get_stream(&consumer.topology.stream)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .purge()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Consumer::new(
        property.clone(),
        client.clone(),
        consumer,
        clock.clone(),
        metrics.clone(),
    )
    .spawn(stopped.clone());
    println!("| writers | load | events/s applied | p50 ms | p99 ms | applied / committed |");
    println!("|---|---|---|---|---|---|");
    let mut next_deal = 1_000_000;
    for (writers, paced) in [(1_i64, true), (16, true), (1, false), (16, false)] {
        clock.0.lock().unwrap().clear();
        let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for w in 0..writers {
            let app = app.clone();
            let committed = committed.clone();
            let first = next_deal + w * 1_000_000;
            tasks.push(tokio::spawn(async move {
                let mut deal = first;
                let mut pace = tokio::time::interval(Duration::from_micros(
                    1_000_000 * writers as u64 / PACED,
                ));
                while Instant::now() < deadline {
                    if paced {
                        pace.tick().await;
                    }
                    deal += 1;
                    let mut tx = app.begin(1 + deal % TENANTS).await.unwrap();
                    let id: Uuid = fusion_events::outbox::append(&mut tx, "crm", won(deal))
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                    committed
                        .lock()
                        .unwrap()
                        .insert(id.to_string(), Instant::now());
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        next_deal += writers * 1_000_000 + 1;
        let total = committed.lock().unwrap().len();
        let wait = Instant::now();
        while clock.0.lock().unwrap().len() < total && wait.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let committed = committed.lock().unwrap().clone();
        let latencies: Vec<Duration> = clock
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(id, at)| committed.get(id).map(|c| at.saturating_duration_since(*c)))
            .collect();
        let applied = latencies.len();
        let cell = Cell::over(latencies, Duration::from_secs(secs));
        let load = if paced {
            format!("paced, {PACED}/s")
        } else {
            "closed loop".to_owned()
        };
        println!(
            "| {writers} | {load} | {:.0} | {} | {} | {applied}/{total} |",
            cell.rps,
            ms(cell.p50),
            ms(cell.p99)
        );
    }
    let _ = stop.send(true);
    db.drop_database().await;
    Ok(())
}
