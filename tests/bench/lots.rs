//! Lot search: a filtered `LotService/ListLots` (50 rows) over 100,000 lots across 100
//! tenants, at 1 and 16 concurrent streams, plus the plans PostgreSQL chose.
//!
//! `cargo run --release -p fusion-e2e --bin fusion-bench-lots [seconds-per-cell]`
//!
//! The property service runs in this process on a fresh database; each call carries a
//! token of a randomly chosen tenant, so row-level security and the tenant filter are
//! exercised as in production. Compare cells of one run, not machines.

mod stats;

use std::time::{Duration, Instant};

use sqlx::Row as _;

use fusion_property::{Application, MIGRATOR, PropertyConfig, SCHEMA};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::lot_service_client::LotServiceClient;
use fusion_service::ServiceConfig;
use fusion_testkit::{TestDatabase, TestKeys, bind_ephemeral, connect_channel};
use stats::{Cell, ms};

const TENANTS: i64 = 100;
const STAGES_PER_TENANT: i64 = 10;
const LOTS_PER_STAGE: i64 = 100;
const FILTER: &str =
    r#"status = "available" AND price >= 400000 AND price <= 650000 AND bedrooms >= 4"#;

/// Loads the stock of one tenant in one transaction, as the application role.
async fn load_tenant(db: &fusion_db::Db, tenant: i64) {
    let mut tx = db.begin(tenant).await.expect("tenant transaction");
    let project: i64 = sqlx::query_scalar(
        "INSERT INTO property.projects (tenant_id, name, slug, status, latitude, longitude)
         VALUES ($1, 'Bench Estate', 'bench-estate', 'selling', -27.5, 153.0) RETURNING id",
    )
    .bind(tenant)
    .fetch_one(&mut *tx)
    .await
    .expect("project");
    sqlx::query(
        "INSERT INTO property.stages (tenant_id, project_id, name, status, \"order\")
         SELECT $1, $2, 'Stage ' || s, 'selling', s FROM generate_series(1, $3) s",
    )
    .bind(tenant)
    .bind(project)
    .bind(STAGES_PER_TENANT)
    .execute(&mut *tx)
    .await
    .expect("stages");
    sqlx::query(
        "INSERT INTO property.lots (tenant_id, project_id, stage_id, lot_number, price, land_size,
                                    bedrooms, bathrooms, garage, status, features)
         SELECT $1, $2, s.id, n::text,
                300000 + ((s.id * 7919 + n * 104729) % 500000),
                300 + (n * 37) % 400,
                3 + (n % 3), 2.0, 2,
                CASE WHEN n % 10 = 0 THEN 'reserved' WHEN n % 17 = 0 THEN 'settled' ELSE 'available' END,
                CASE WHEN n % 4 = 0 THEN '[\"Pool\"]'::jsonb ELSE '[]'::jsonb END
           FROM property.stages s, generate_series(1, $3) n
          WHERE s.project_id = $2",
    )
    .bind(tenant)
    .bind(project)
    .bind(LOTS_PER_STAGE)
    .execute(&mut *tx)
    .await
    .expect("lots");
    tx.commit().await.expect("commit");
}

async fn run(
    channel: tonic::transport::Channel,
    users: &[(i64, String)],
    streams: usize,
    secs: u64,
) -> Cell {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..streams)
        .map(|s| {
            let mut client = LotServiceClient::new(channel.clone());
            let users = users.to_vec();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = s;
                while Instant::now() < deadline {
                    let (tenant, token) = &users[(i * 37) % users.len()];
                    i += 1;
                    let mut req = tonic::Request::new(pb::ListLotsRequest {
                        filter: FILTER.into(),
                        order_by: "price".into(),
                        page_size: 50,
                        ..Default::default()
                    });
                    let md = req.metadata_mut();
                    md.insert(
                        "authorization",
                        format!("Bearer {token}").parse().expect("ascii"),
                    );
                    md.insert("x-tenant-id", tenant.to_string().parse().expect("digits"));
                    let started = Instant::now();
                    let page = client
                        .list_lots(req)
                        .await
                        .expect("ListLots succeeds")
                        .into_inner();
                    latencies.push(started.elapsed());
                    assert_eq!(page.lots.len(), 50, "a full page");
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
    let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
    let app_db = db.app_db(SCHEMA).await;
    let loading = Instant::now();
    for tenant in 1..=TENANTS {
        load_tenant(&app_db, tenant).await;
    }
    let owner = sqlx::PgPool::connect(&db.owner_url).await.expect("owner");
    sqlx::query("ANALYZE")
        .execute(&owner)
        .await
        .expect("analyze");
    println!(
        "loaded {} lots across {TENANTS} tenants in {:.1} s",
        TENANTS * STAGES_PER_TENANT * LOTS_PER_STAGE,
        loading.elapsed().as_secs_f64()
    );

    let keys = TestKeys::new();
    let mut service = ServiceConfig::local("property", db.app_url("property"));
    service.db_max_connections = 16;
    let mut config = PropertyConfig::with_defaults(service);
    config.media_store = fusion_property::media_store::StoreConfig::Local {
        dir: std::env::temp_dir().join("fusion-bench-media"),
    };
    // Lot search never asks crm; nothing answers there.
    let crm = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
    let app = Application::build(
        config,
        keys.provider.clone(),
        crm,
        bind_ephemeral().await,
        bind_ephemeral().await,
    )
    .await
    .expect("property starts");
    let channel = connect_channel(app.grpc_addr()).await;
    let users: Vec<(i64, String)> = (1..=TENANTS)
        .map(|t| (t, keys.mint(t, 1, &["property.lots.read"])))
        .collect();
    run(channel.clone(), &users, 4, 1).await; // warm-up

    println!("\nfilter: {FILTER}, order_by: price, page_size: 50\n");
    println!("| streams | req/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    for streams in [1usize, 16] {
        let c = run(channel.clone(), &users, streams, secs).await;
        println!(
            "| {streams} | {:.0} | {} | {} |",
            c.rps,
            ms(c.p50),
            ms(c.p99)
        );
    }

    // The plans of the two statements ListLots issues (page and total), for one tenant,
    // as the application role under row-level security.
    let mut tx = app_db.begin(42).await.expect("tenant transaction");
    for (what, sql) in [
        (
            "page",
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id, lot_number, price FROM property.lots
              WHERE TRUE AND tenant_id = 42 AND deleted_at IS NULL
                AND ((status = 'available') AND (price >= 400000) AND (price <= 650000) AND (bedrooms >= 4))
              ORDER BY price ASC NULLS LAST, id ASC NULLS LAST LIMIT 51",
        ),
        (
            "total",
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT count(*) FROM property.lots
              WHERE TRUE AND tenant_id = 42 AND deleted_at IS NULL
                AND ((status = 'available') AND (price >= 400000) AND (price <= 650000) AND (bedrooms >= 4))",
        ),
    ] {
        println!("\n{what}:\n```");
        for row in sqlx::query(sql).fetch_all(&mut *tx).await.expect("explain") {
            println!("{}", row.get::<String, _>(0));
        }
        println!("```");
    }
    tx.rollback().await.expect("rollback");
    app.stop().await.expect("stop");
}
