//! A won deal sells its lot: crm's `crm.deal.won`, written to a crm outbox and relayed
//! through a real (private) NATS JetStream, moves the lot to exchanged for that deal.

use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;

use fusion_events::relay::Relay;
use fusion_events::{Event, EventMetrics, RelayConfig};
use fusion_proto::crm::v1::DealWon;
use fusion_proto::property::v1 as pb;
use fusion_testkit::{PrivateNats, TestDatabase};

use crate::helpers::{TestApp, User, test_config};

static CRM: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/crm");

/// Property with its lot-sales consumer on a private NATS, and a crm outbox (in a
/// database of its own, as crm's would be) with its relay.
struct Sales {
    app: TestApp,
    _replica: fusion_property::Application,
    _nats: PrivateNats,
    crm: TestDatabase,
    relay: Relay,
}

impl Sales {
    async fn start() -> Self {
        let app = TestApp::spawn().await;
        let nats = PrivateNats::start();
        let mut config = test_config(&app.db);
        config.service.nats_url = Some(nats.url());
        let replica = TestApp::replica_with(&app.keys, config).await;
        let crm = TestDatabase::create(&[("crm", &CRM)]).await;
        let owner = PgPoolOptions::new()
            .max_connections(1)
            .connect(&crm.owner_url)
            .await
            .unwrap();
        let client = fusion_events::connect(&nats.url(), "property-tests")
            .await
            .unwrap();
        let relay = Relay::new(owner, client, RelayConfig::new("crm"), EventMetrics::new());
        Self {
            app,
            _replica: replica,
            _nats: nats,
            crm,
            relay,
        }
    }

    /// Commits `crm.deal.won` for `deal_id` on `lot_id` in `tenant` and relays it.
    async fn win(&self, tenant: i64, deal_id: i64, lot_id: i64) {
        let db = self.crm.app_db().await;
        let mut tx = db.begin(tenant).await.unwrap();
        let won = DealWon {
            deal_id,
            lot_id,
            stage: "won".into(),
            ..Default::default()
        };
        fusion_events::outbox::append(&mut tx, "crm", Event::new("crm.deal.won", deal_id, &won))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(self.relay.run_once().await.unwrap().sent, 1);
    }

    /// Waits until property's inbox holds `count` events (every one applied or refused).
    async fn applied(&self, count: i64) {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.app.db.admin_url)
            .await
            .unwrap();
        let start = Instant::now();
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM property.inbox_events WHERE consumer = 'property-lot-sales'",
            )
            .fetch_one(&admin)
            .await
            .unwrap();
            if n >= count {
                assert_eq!(n, count);
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{count} events not consumed within 15 s ({n})"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn history(&self, who: &User, lot: i64) -> Vec<pb::LotStatusChange> {
        self.app
            .lots()
            .list_lot_status_changes(who.req(pb::ListLotStatusChangesRequest {
                lot_id: lot,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
            .lot_status_changes
    }

    async fn deal_of(&self, lot: i64) -> Option<i64> {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.app.db.admin_url)
            .await
            .unwrap();
        sqlx::query_scalar("SELECT deal_id FROM property.lots WHERE id = $1")
            .bind(lot)
            .fetch_one(&admin)
            .await
            .unwrap()
    }
}

async fn act(app: &TestApp, who: &User, action: &str, id: i64) {
    let mut lots = app.lots();
    match action {
        "hold" => {
            lots.hold_lot(who.req(pb::HoldLotRequest {
                id,
                ..Default::default()
            }))
            .await
            .unwrap();
        }
        "reserve" => {
            lots.reserve_lot(who.req(pb::ReserveLotRequest {
                id,
                ..Default::default()
            }))
            .await
            .unwrap();
        }
        other => panic!("no action {other}"),
    }
}

#[tokio::test]
async fn a_won_deal_exchanges_its_available_held_or_reserved_lot_for_the_deal() {
    let s = Sales::start().await;
    let acme = &s.app.acme;
    let (_, stage) = s.app.project_with_stage(acme, "sales").await;
    let available = s.app.lot(acme, &stage, "1", "500000.00").await;
    let held = s.app.lot(acme, &stage, "2", "510000.00").await;
    let reserved = s.app.lot(acme, &stage, "3", "520000.00").await;
    act(&s.app, acme, "hold", held.id).await;
    act(&s.app, acme, "reserve", reserved.id).await;

    for (deal, lot) in [(101, &available), (102, &held), (103, &reserved)] {
        s.win(acme.tenant_id, deal, lot.id).await;
    }
    s.applied(3).await;
    for (deal, lot, from) in [
        (101, &available, "available"),
        (102, &held, "hold"),
        (103, &reserved, "reserved"),
    ] {
        assert_eq!(s.app.get_lot(acme, lot.id).await.status, "exchanged");
        assert_eq!(s.deal_of(lot.id).await, Some(deal));
        // Newest first.
        let last = s.history(acme, lot.id).await.into_iter().next().unwrap();
        assert_eq!(
            (
                last.from_status.as_str(),
                last.to_status.as_str(),
                last.reason.as_str()
            ),
            (from, "exchanged", format!("deal {deal} won").as_str())
        );
    }
}

#[tokio::test]
async fn a_lot_sold_to_one_deal_is_not_sold_to_another_nor_twice_to_the_same() {
    let s = Sales::start().await;
    let acme = &s.app.acme;
    let (_, stage) = s.app.project_with_stage(acme, "once").await;
    let lot = s.app.lot(acme, &stage, "1", "500000.00").await;
    s.win(acme.tenant_id, 201, lot.id).await;
    s.win(acme.tenant_id, 202, lot.id).await;
    // The same deal won again (a second event, not a redelivery) changes nothing.
    s.win(acme.tenant_id, 201, lot.id).await;
    s.applied(3).await;
    assert_eq!(
        s.deal_of(lot.id).await,
        Some(201),
        "the first winner keeps it"
    );
    let exchanges = s
        .history(acme, lot.id)
        .await
        .into_iter()
        .filter(|c| c.to_status == "exchanged")
        .count();
    assert_eq!(exchanges, 1);
}

#[tokio::test]
async fn a_won_deal_of_another_tenant_cannot_touch_this_tenants_lot() {
    let s = Sales::start().await;
    let acme = &s.app.acme;
    let (_, stage) = s.app.project_with_stage(acme, "mine").await;
    let lot = s.app.lot(acme, &stage, "1", "500000.00").await;
    // Globex's event names acme's lot id.
    s.win(s.app.globex.tenant_id, 301, lot.id).await;
    s.applied(1).await;
    assert_eq!(s.app.get_lot(acme, lot.id).await.status, "available");
    assert_eq!(s.deal_of(lot.id).await, None);
}
