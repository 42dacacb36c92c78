//! Lots and crm's deals, through a real (private) NATS JetStream: crm's deal events,
//! written to a crm outbox and relayed, sell a won deal's lot (or are refused, and
//! property says so with `property.lot.sale_refused`) and release the lots taken for a
//! lost or reopened deal; every lot transition is announced in property's outbox
//! (`property.lot.status_changed`) and relayed; holds and reservations name their deal.
//!
//! Crm cannot run here (it depends on property), so a hold or reservation for a deal
//! finds crm unavailable; a lot held or reserved for a deal is set up by giving the
//! held or reserved lot its deal in the database. The happy path through crm is the
//! e2e suite's.

use std::time::{Duration, Instant};

use prost::Message as _;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tonic::Code;
use uuid::Uuid;

use fusion_events::relay::Relay;
use fusion_events::{Event, EventMetrics, RelayConfig};
use fusion_proto::common::v1::EventEnvelope;
use fusion_proto::crm::v1::{DealLost, DealReopened, DealWon};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::{LotSaleRefused, LotStatusChanged};
use fusion_testkit::{PrivateNats, TestDatabase};

use crate::helpers::{TestApp, User, expect_code, reason, test_config, violated_fields};

static CRM: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/crm");

const STATUS_CHANGED: &str = "property.lot.status_changed";
const SALE_REFUSED: &str = "property.lot.sale_refused";

/// Property with its lot-sales consumer and its relay on a private NATS, and a crm
/// outbox (in a database of its own, as crm's would be) with its relay.
struct Sales {
    app: TestApp,
    _replica: fusion_property::Application,
    nats: PrivateNats,
    crm: TestDatabase,
    relay: Relay,
    admin: PgPool,
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
        let admin = admin(&app).await;
        Self {
            app,
            _replica: replica,
            nats,
            crm,
            relay,
            admin,
        }
    }

    /// Commits crm's `event_type` about deal `deal_id` in `tenant` and relays it.
    async fn publish(
        &self,
        tenant: i64,
        event_type: &str,
        deal_id: i64,
        payload: &impl prost::Message,
    ) {
        let db = self.crm.app_db("crm").await;
        let mut tx = db.begin(tenant).await.unwrap();
        fusion_events::outbox::append(&mut tx, "crm", Event::new(event_type, deal_id, payload))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(self.relay.run_once().await.unwrap().sent, 1);
    }

    /// `crm.deal.won` for `deal_id` on `lot_id` in `tenant`.
    async fn win(&self, tenant: i64, deal_id: i64, lot_id: i64) {
        let won = DealWon {
            deal_id,
            lot_id,
            stage: "won".into(),
            ..Default::default()
        };
        self.publish(tenant, "crm.deal.won", deal_id, &won).await;
    }

    /// `crm.deal.lost` for `deal_id` (on `lot_id`, which property does not go by).
    async fn lose(&self, tenant: i64, deal_id: i64, lot_id: i64) {
        let lost = DealLost {
            deal_id,
            lot_id,
            reason: "went elsewhere".into(),
            ..Default::default()
        };
        self.publish(tenant, "crm.deal.lost", deal_id, &lost).await;
    }

    /// `crm.deal.reopened` for `deal_id`, once won.
    async fn reopen(&self, tenant: i64, deal_id: i64, lot_id: i64) {
        let reopened = DealReopened {
            deal_id,
            lot_id,
            previous_status: "won".into(),
            stage: "property_enquiry".into(),
            ..Default::default()
        };
        self.publish(tenant, "crm.deal.reopened", deal_id, &reopened)
            .await;
    }

    /// Waits until property's inbox holds `count` events (every one applied or refused).
    async fn applied(&self, count: i64) {
        let start = Instant::now();
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM property.inbox_events WHERE consumer = 'property-lot-sales'",
            )
            .fetch_one(&self.admin)
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

    /// The stream every event goes through.
    async fn stream(&self) -> async_nats::jetstream::stream::Stream {
        let client = fusion_events::connect(&self.nats.url(), "property-tests")
            .await
            .unwrap();
        async_nats::jetstream::new(client)
            .get_stream("FUSION")
            .await
            .expect("the stream exists")
    }
}

async fn admin(app: &TestApp) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(&app.db.admin_url)
        .await
        .unwrap()
}

async fn history(app: &TestApp, who: &User, lot: i64) -> Vec<pb::LotStatusChange> {
    app.lots()
        .list_lot_status_changes(who.req(pb::ListLotStatusChangesRequest {
            lot_id: lot,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .lot_status_changes
}

/// The last status change of a lot: (from, to, reason, deal, actor).
async fn last_change(app: &TestApp, who: &User, lot: i64) -> (String, String, String, i64, i64) {
    let c = history(app, who, lot).await.remove(0);
    (
        c.from_status,
        c.to_status,
        c.reason,
        c.deal_id,
        c.actor_user_id,
    )
}

/// The events of `event_type` about lot `lot` in property's outbox, oldest first, as
/// (tenant, payload).
async fn outbox<M: prost::Message + Default>(
    admin: &PgPool,
    event_type: &str,
    lot: i64,
) -> Vec<(i64, M)> {
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT tenant_id, payload FROM property.outbox_events
          WHERE event_type = $1 AND aggregate_type = 'lot' AND aggregate_id = $2 ORDER BY id",
    )
    .bind(event_type)
    .bind(lot)
    .fetch_all(admin)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(tenant, payload)| (tenant, M::decode(payload.as_slice()).expect("a payload")))
        .collect()
}

/// Gives lot `lot` (held or reserved by the test) to deal `deal`, as HoldLot or
/// ReserveLot given that deal would have (they need crm, which cannot run here).
async fn take_for(app: &TestApp, who: &User, lot: i64, deal: i64) {
    let mut tx = app.app.state().db.begin(who.tenant_id).await.unwrap();
    sqlx::query("UPDATE property.lots SET deal_id = $2 WHERE id = $1")
        .bind(lot)
        .bind(deal)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn act(app: &TestApp, who: &User, action: &str, id: i64) -> pb::Lot {
    let mut lots = app.lots();
    let reason = format!("test: {action}");
    let done = match action {
        "hold" => {
            lots.hold_lot(who.req(pb::HoldLotRequest {
                id,
                reason,
                ..Default::default()
            }))
            .await
        }
        "release" => {
            lots.release_lot(who.req(pb::ReleaseLotRequest {
                id,
                reason,
                ..Default::default()
            }))
            .await
        }
        "reserve" => {
            lots.reserve_lot(who.req(pb::ReserveLotRequest {
                id,
                reason,
                deposit_amount: "5000.00".into(),
                ..Default::default()
            }))
            .await
        }
        "exchange" => {
            lots.exchange_lot(who.req(pb::ExchangeLotRequest {
                id,
                reason,
                ..Default::default()
            }))
            .await
        }
        "unconditional" => {
            lots.mark_lot_unconditional(who.req(pb::MarkLotUnconditionalRequest {
                id,
                reason,
                ..Default::default()
            }))
            .await
        }
        "withdraw" => {
            lots.withdraw_lot(who.req(pb::WithdrawLotRequest {
                id,
                reason,
                ..Default::default()
            }))
            .await
        }
        "revert" => {
            lots.revert_lot(who.req(pb::RevertLotRequest {
                id,
                reason,
                ..Default::default()
            }))
            .await
        }
        other => panic!("no action {other}"),
    };
    done.unwrap_or_else(|e| panic!("{action} lot {id}: {e:?}"))
        .into_inner()
}

/// Lets lot `lot`'s hold lapse and waits for the housekeeping job to release it.
async fn lapse(app: &TestApp, who: &User, lot: i64) {
    let mut tx = app.app.state().db.begin(who.tenant_id).await.unwrap();
    sqlx::query(
        "UPDATE property.lots SET hold_expires_at = now() - interval '1 second' WHERE id = $1",
    )
    .bind(lot)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let start = Instant::now();
    while app.get_lot(who, lot).await.status != "available" {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the housekeeping job did not release the lapsed hold"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
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
    let held_for_it = s.app.lot(acme, &stage, "4", "530000.00").await;
    act(&s.app, acme, "hold", held.id).await;
    act(&s.app, acme, "reserve", reserved.id).await;
    act(&s.app, acme, "reserve", held_for_it.id).await;
    take_for(&s.app, acme, held_for_it.id, 104).await;

    for (deal, lot) in [
        (101, &available),
        (102, &held),
        (103, &reserved),
        (104, &held_for_it),
    ] {
        s.win(acme.tenant_id, deal, lot.id).await;
    }
    s.applied(4).await;
    for (deal, lot, from) in [
        (101, &available, "available"),
        (102, &held, "hold"),
        (103, &reserved, "reserved"),
        (104, &held_for_it, "reserved"),
    ] {
        let now = s.app.get_lot(acme, lot.id).await;
        assert_eq!((now.status.as_str(), now.deal_id), ("exchanged", deal));
        // The consumer has no service account yet: no actor.
        assert_eq!(
            last_change(&s.app, acme, lot.id).await,
            (
                from.to_owned(),
                "exchanged".to_owned(),
                format!("deal {deal} won"),
                deal,
                0
            )
        );
    }
    assert!(
        outbox::<LotSaleRefused>(&s.admin, SALE_REFUSED, available.id)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_lot_sold_to_one_deal_is_refused_to_another_which_property_announces_once() {
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
        s.app.get_lot(acme, lot.id).await.deal_id,
        201,
        "the first winner keeps it"
    );
    let exchanges = history(&s.app, acme, lot.id)
        .await
        .into_iter()
        .filter(|c| c.to_status == "exchanged")
        .count();
    assert_eq!(exchanges, 1);
    assert_eq!(
        outbox::<LotSaleRefused>(&s.admin, SALE_REFUSED, lot.id).await,
        vec![(
            acme.tenant_id,
            LotSaleRefused {
                lot_id: lot.id,
                deal_id: 202,
                lot_status: "exchanged".into(),
                sold_to_deal_id: 201,
            }
        )],
        "one refusal, for the second deal only"
    );
}

#[tokio::test]
async fn a_won_deal_is_refused_a_lot_withdrawn_or_taken_for_another_deal() {
    let s = Sales::start().await;
    let acme = &s.app.acme;
    let (_, stage) = s.app.project_with_stage(acme, "taken").await;
    let withdrawn = s.app.lot(acme, &stage, "1", "500000.00").await;
    let held = s.app.lot(acme, &stage, "2", "510000.00").await;
    let reserved = s.app.lot(acme, &stage, "3", "520000.00").await;
    act(&s.app, acme, "withdraw", withdrawn.id).await;
    act(&s.app, acme, "hold", held.id).await;
    take_for(&s.app, acme, held.id, 401).await;
    act(&s.app, acme, "reserve", reserved.id).await;
    take_for(&s.app, acme, reserved.id, 403).await;

    s.win(acme.tenant_id, 411, withdrawn.id).await;
    s.win(acme.tenant_id, 412, held.id).await;
    s.win(acme.tenant_id, 413, reserved.id).await;
    s.applied(3).await;
    for (lot, deal, status, taken_for) in [
        (&withdrawn, 411, "withdrawn", 0),
        (&held, 412, "hold", 401),
        (&reserved, 413, "reserved", 403),
    ] {
        let now = s.app.get_lot(acme, lot.id).await;
        assert_eq!((now.status.as_str(), now.deal_id), (status, taken_for));
        assert_eq!(
            outbox::<LotSaleRefused>(&s.admin, SALE_REFUSED, lot.id).await,
            vec![(
                acme.tenant_id,
                LotSaleRefused {
                    lot_id: lot.id,
                    deal_id: deal,
                    lot_status: status.into(),
                    sold_to_deal_id: taken_for,
                }
            )]
        );
    }
    // The deal the lot is held for wins it.
    s.win(acme.tenant_id, 401, held.id).await;
    s.applied(4).await;
    let now = s.app.get_lot(acme, held.id).await;
    assert_eq!((now.status.as_str(), now.deal_id), ("exchanged", 401));
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
    let now = s.app.get_lot(acme, lot.id).await;
    assert_eq!((now.status.as_str(), now.deal_id), ("available", 0));
    assert!(
        outbox::<LotSaleRefused>(&s.admin, SALE_REFUSED, lot.id)
            .await
            .is_empty()
    );
}

/// Every transition (a user's, the housekeeping job's) appends one
/// `property.lot.status_changed` in its own transaction, carrying what the status
/// history records; a refused one appends nothing.
#[tokio::test]
async fn every_lot_transition_announces_itself_once_as_its_history_records_it() {
    let app = TestApp::spawn().await;
    let admin = admin(&app).await;
    let acme = &app.acme;
    let (project, stage) = app.project_with_stage(acme, "announced").await;
    let lot = app.lot(acme, &stage, "7", "500000.00").await;
    for action in [
        "hold",
        "release",
        "reserve",
        "exchange",
        "unconditional",
        "revert",
    ] {
        act(&app, acme, action, lot.id).await;
    }
    let refused = app
        .lots()
        .hold_lot(acme.req(pb::HoldLotRequest {
            id: lot.id,
            ..Default::default()
        }))
        .await;
    expect_code(refused, Code::FailedPrecondition);
    let lapsing = app.lot(acme, &stage, "8", "510000.00").await;
    act(&app, acme, "hold", lapsing.id).await;
    lapse(&app, acme, lapsing.id).await;

    for (lot, changes) in [(&lot, 7), (&lapsing, 3)] {
        let mut recorded = history(&app, acme, lot.id).await;
        recorded.reverse();
        assert_eq!(recorded.len(), changes);
        let announced = outbox::<LotStatusChanged>(&admin, STATUS_CHANGED, lot.id).await;
        let expected: Vec<(i64, LotStatusChanged)> = recorded
            .iter()
            .map(|c| {
                (
                    acme.tenant_id,
                    LotStatusChanged {
                        lot_id: lot.id,
                        project_id: project.id,
                        stage_id: stage.id,
                        lot_number: lot.lot_number.clone(),
                        from_status: c.from_status.clone(),
                        to_status: c.to_status.clone(),
                        deal_id: c.deal_id,
                        reason: c.reason.clone(),
                        actor_user_id: c.actor_user_id,
                    },
                )
            })
            .collect();
        assert_eq!(announced, expected);
    }
    let created = &outbox::<LotStatusChanged>(&admin, STATUS_CHANGED, lot.id).await[0].1;
    assert_eq!(
        (
            created.from_status.as_str(),
            created.to_status.as_str(),
            created.actor_user_id
        ),
        ("", "available", acme.user_id)
    );
    let lapsed = &outbox::<LotStatusChanged>(&admin, STATUS_CHANGED, lapsing.id).await[2].1;
    assert_eq!(
        (
            lapsed.from_status.as_str(),
            lapsed.reason.as_str(),
            lapsed.actor_user_id
        ),
        ("hold", "hold expired", 0),
        "the system released it"
    );
}

/// Property's relay publishes its outbox: each event once, as an envelope naming the
/// lot, in its tenant.
#[tokio::test]
async fn property_relays_its_lot_events_to_the_stream() {
    let s = Sales::start().await;
    let acme = &s.app.acme;
    let (_, stage) = s.app.project_with_stage(acme, "relayed").await;
    let lot = s.app.lot(acme, &stage, "1", "500000.00").await;
    act(&s.app, acme, "hold", lot.id).await;
    let start = Instant::now();
    loop {
        let unsent: i64 =
            sqlx::query_scalar("SELECT count(*) FROM property.outbox_events WHERE sent_at IS NULL")
                .fetch_one(&s.admin)
                .await
                .unwrap();
        if unsent == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "property's relay left {unsent} events"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let stream = s.stream().await;
    let last = stream
        .get_last_raw_message_by_subject("fusion.property.lot.status_changed")
        .await
        .expect("property's events are on the stream");
    let envelope = EventEnvelope::decode(last.payload).unwrap();
    assert_eq!(
        (
            envelope.event_type.as_str(),
            envelope.tenant_id,
            envelope.aggregate_type.as_str(),
            envelope.aggregate_id
        ),
        (STATUS_CHANGED, acme.tenant_id, "lot", lot.id)
    );
    let changed = LotStatusChanged::decode(envelope.payload.as_slice()).unwrap();
    assert_eq!(
        (changed.from_status.as_str(), changed.to_status.as_str()),
        ("available", "hold")
    );
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM property.outbox_events")
        .fetch_one(&s.admin)
        .await
        .unwrap();
    let mut stream = stream;
    let info = stream.info().await.unwrap();
    assert_eq!(info.state.messages, sent as u64, "each event once");
}

/// The lots of tenant `who` taken for deal 7 in every state, and others, for the lost
/// and reopened tests: (held, reserved, exchanged, unconditional) for deal 7, then one
/// held for deal 8 and one held for no deal.
async fn lots_of_deal_seven(s: &Sales, who: &User, slug: &str) -> Vec<pb::Lot> {
    let (_, stage) = s.app.project_with_stage(who, slug).await;
    let mut lots = Vec::new();
    for n in 1..=6 {
        lots.push(s.app.lot(who, &stage, &n.to_string(), "500000.00").await);
    }
    act(&s.app, who, "hold", lots[0].id).await;
    take_for(&s.app, who, lots[0].id, 7).await;
    act(&s.app, who, "reserve", lots[1].id).await;
    take_for(&s.app, who, lots[1].id, 7).await;
    s.win(who.tenant_id, 7, lots[2].id).await;
    for action in ["reserve", "exchange", "unconditional"] {
        act(&s.app, who, action, lots[3].id).await;
    }
    take_for(&s.app, who, lots[3].id, 7).await;
    act(&s.app, who, "hold", lots[4].id).await;
    take_for(&s.app, who, lots[4].id, 8).await;
    act(&s.app, who, "hold", lots[5].id).await;
    lots
}

#[tokio::test]
async fn a_lost_deal_releases_only_the_lots_held_reserved_or_exchanged_for_it() {
    let s = Sales::start().await;
    let acme = &s.app.acme;
    let lots = lots_of_deal_seven(&s, acme, "lost").await;
    s.applied(1).await;
    let project = s.app.get_project(acme, lots[0].project_id).await;
    assert_eq!(project.available_lot_count, 0);

    s.lose(acme.tenant_id, 7, lots[2].id).await;
    s.applied(2).await;
    for (lot, from) in [
        (&lots[0], "hold"),
        (&lots[1], "reserved"),
        (&lots[2], "exchanged"),
    ] {
        let now = s.app.get_lot(acme, lot.id).await;
        assert_eq!((now.status.as_str(), now.deal_id), ("available", 0));
        assert_eq!(now.reserved_price, "", "as ReleaseLot leaves it");
        assert!(now.hold_expire_time.is_none());
        assert_eq!(
            last_change(&s.app, acme, lot.id).await,
            (
                from.to_owned(),
                "available".to_owned(),
                "deal 7 lost".to_owned(),
                7,
                0
            )
        );
        let (tenant, announced) = outbox::<LotStatusChanged>(&s.admin, STATUS_CHANGED, lot.id)
            .await
            .pop()
            .unwrap();
        assert_eq!(
            (
                tenant,
                announced.to_status.as_str(),
                announced.deal_id,
                announced.reason.as_str()
            ),
            (acme.tenant_id, "available", 7, "deal 7 lost")
        );
    }
    for (lot, status, deal) in [
        (&lots[3], "unconditional", 7),
        (&lots[4], "hold", 8),
        (&lots[5], "hold", 0),
    ] {
        let now = s.app.get_lot(acme, lot.id).await;
        assert_eq!((now.status.as_str(), now.deal_id), (status, deal));
    }
    assert_eq!(
        s.app
            .get_project(acme, project.id)
            .await
            .available_lot_count,
        3,
        "the project's figures follow"
    );
}

#[tokio::test]
async fn a_reopened_deal_releases_its_lot_and_won_reopened_won_apply_in_commit_order() {
    let s = Sales::start().await;
    let acme = &s.app.acme;
    let lots = lots_of_deal_seven(&s, acme, "reopened").await;
    s.applied(1).await;
    s.reopen(acme.tenant_id, 7, lots[2].id).await;
    s.applied(2).await;
    for lot in &lots[..3] {
        let now = s.app.get_lot(acme, lot.id).await;
        assert_eq!((now.status.as_str(), now.deal_id), ("available", 0));
        assert_eq!(last_change(&s.app, acme, lot.id).await.2, "deal 7 reopened");
    }
    assert_eq!(
        s.app.get_lot(acme, lots[3].id).await.status,
        "unconditional"
    );
    assert_eq!(s.app.get_lot(acme, lots[4].id).await.deal_id, 8);

    // One deal's events, committed in a row and relayed together, apply in order.
    let (_, stage) = s.app.project_with_stage(acme, "again").await;
    let lot = s.app.lot(acme, &stage, "1", "500000.00").await;
    s.win(acme.tenant_id, 10, lot.id).await;
    s.reopen(acme.tenant_id, 10, lot.id).await;
    s.win(acme.tenant_id, 10, lot.id).await;
    s.applied(5).await;
    let now = s.app.get_lot(acme, lot.id).await;
    assert_eq!((now.status.as_str(), now.deal_id), ("exchanged", 10));
    let mut changes: Vec<(String, String)> = history(&s.app, acme, lot.id)
        .await
        .into_iter()
        .map(|c| (c.to_status, c.reason))
        .collect();
    changes.reverse();
    assert_eq!(
        changes,
        [
            ("available", "created"),
            ("exchanged", "deal 10 won"),
            ("available", "deal 10 reopened"),
            ("exchanged", "deal 10 won"),
        ]
        .map(|(to, why)| (to.to_owned(), why.to_owned()))
    );
}

#[tokio::test]
async fn a_lost_deal_of_one_tenant_never_touches_another_tenants_lot_of_the_same_deal() {
    let s = Sales::start().await;
    let (acme, globex) = (&s.app.acme, &s.app.globex);
    let (_, acme_stage) = s.app.project_with_stage(acme, "acme").await;
    let (_, globex_stage) = s.app.project_with_stage(globex, "globex").await;
    let acme_lot = s.app.lot(acme, &acme_stage, "1", "500000.00").await;
    let globex_lot = s.app.lot(globex, &globex_stage, "1", "500000.00").await;
    for (who, lot) in [(acme, &acme_lot), (globex, &globex_lot)] {
        act(&s.app, who, "hold", lot.id).await;
        take_for(&s.app, who, lot.id, 7).await;
    }
    // Globex's deal 7 is lost, naming acme's lot for good measure.
    s.lose(globex.tenant_id, 7, acme_lot.id).await;
    s.applied(1).await;
    let now = s.app.get_lot(globex, globex_lot.id).await;
    assert_eq!((now.status.as_str(), now.deal_id), ("available", 0));
    let now = s.app.get_lot(acme, acme_lot.id).await;
    assert_eq!((now.status.as_str(), now.deal_id), ("hold", 7));
    assert_eq!(history(&s.app, acme, acme_lot.id).await.len(), 2);
}

/// The status changes of each of `lots` and the events in property's outbox.
async fn counts(s: &Sales, lots: &[pb::Lot]) -> (Vec<usize>, i64) {
    let mut changes = Vec::new();
    for lot in lots {
        changes.push(history(&s.app, &s.app.acme, lot.id).await.len());
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM property.outbox_events")
        .fetch_one(&s.admin)
        .await
        .unwrap();
    (changes, events)
}

/// A second `crm.deal.lost` for the same deal finds nothing left to release, and the
/// same event delivered again (republished under another message id, as an operator's
/// replay would) is absorbed by the inbox.
#[tokio::test]
async fn replayed_and_redelivered_deal_events_have_no_second_effect() {
    let s = Sales::start().await;
    let acme = &s.app.acme;
    let lots = lots_of_deal_seven(&s, acme, "replayed").await;
    s.applied(1).await;
    s.lose(acme.tenant_id, 7, 0).await;
    s.applied(2).await;
    let before = counts(&s, &lots).await;

    s.lose(acme.tenant_id, 7, 0).await;
    s.applied(3).await;
    assert_eq!(
        counts(&s, &lots).await,
        before,
        "a second loss changes nothing"
    );

    // Hold the first lot for deal 7 again, then deliver the first loss again: it is
    // the same event, already applied, so the new hold stays.
    act(&s.app, acme, "hold", lots[0].id).await;
    take_for(&s.app, acme, lots[0].id, 7).await;
    let before = counts(&s, &lots).await;
    let stream = s.stream().await;
    let first_loss: Vec<u8> = {
        // The first crm.deal.lost is the stream's first message on that subject.
        let mut seq = 1;
        loop {
            let message = stream.get_raw_message(seq).await.expect("a message");
            if message.subject.as_str() == "fusion.crm.deal.lost" {
                break message.payload.to_vec();
            }
            seq += 1;
        }
    };
    let envelope = EventEnvelope::decode(first_loss.as_slice()).unwrap();
    let applied_once: i64 =
        sqlx::query_scalar("SELECT count(*) FROM property.inbox_events WHERE event_id = $1::uuid")
            .bind(&envelope.event_id)
            .fetch_one(&s.admin)
            .await
            .unwrap();
    assert_eq!(applied_once, 1);
    let client = fusion_events::connect(&s.nats.url(), "property-tests")
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", Uuid::new_v4().to_string().as_str());
    js.publish_with_headers("fusion.crm.deal.lost", headers, first_loss.into())
        .await
        .unwrap()
        .await
        .expect("stored again");
    // A later event applies only after the redelivered one was handled (one at a time).
    s.lose(acme.tenant_id, 99, 0).await;
    s.applied(4).await;
    assert_eq!(
        counts(&s, &lots).await,
        before,
        "the redelivered loss changed nothing"
    );
    let now = s.app.get_lot(acme, lots[0].id).await;
    assert_eq!((now.status.as_str(), now.deal_id), ("hold", 7));
}

#[tokio::test]
async fn a_hold_or_reservation_for_a_deal_asks_crm_and_changes_nothing_when_it_cannot() {
    let app = TestApp::spawn().await;
    let admin = admin(&app).await;
    let acme = &app.acme;
    let (_, stage) = app.project_with_stage(acme, "asks").await;
    let lot = app.lot(acme, &stage, "1", "500000.00").await;
    let unavailable = app
        .lots()
        .hold_lot(acme.req(pb::HoldLotRequest {
            id: lot.id,
            deal_id: 7,
            ..Default::default()
        }))
        .await;
    let status = expect_code(unavailable, Code::Unavailable);
    assert_eq!(reason(&status), "UNAVAILABLE");
    assert!(status.message().contains("deal_id"), "{}", status.message());
    let unavailable = app
        .lots()
        .reserve_lot(acme.req(pb::ReserveLotRequest {
            id: lot.id,
            deal_id: 7,
            deposit_amount: "5000.00".into(),
            ..Default::default()
        }))
        .await;
    expect_code(unavailable, Code::Unavailable);
    let now = app.get_lot(acme, lot.id).await;
    assert_eq!((now.status.as_str(), now.deal_id), ("available", 0));
    assert_eq!(history(&app, acme, lot.id).await.len(), 1);
    assert_eq!(
        outbox::<LotStatusChanged>(&admin, STATUS_CHANGED, lot.id)
            .await
            .len(),
        1
    );

    for deal_id in [-1, -7] {
        let invalid = app
            .lots()
            .hold_lot(acme.req(pb::HoldLotRequest {
                id: lot.id,
                deal_id,
                ..Default::default()
            }))
            .await;
        let status = expect_code(invalid, Code::InvalidArgument);
        assert_eq!(violated_fields(&status), ["deal_id"]);
    }

    // The request id's digest covers deal_id: the same id for another deal is a
    // different request, refused before crm is asked.
    let request_id = Uuid::new_v4().to_string();
    let hold = |deal_id| pb::HoldLotRequest {
        id: lot.id,
        deal_id,
        request_id: request_id.clone(),
        ..Default::default()
    };
    let held = app
        .lots()
        .hold_lot(acme.req(hold(0)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((held.status.as_str(), held.deal_id), ("hold", 0));
    let reused = app.lots().hold_lot(acme.req(hold(7))).await;
    let status = expect_code(reused, Code::InvalidArgument);
    assert_eq!(reason(&status), "REQUEST_ID_REUSED");
    let again = app
        .lots()
        .hold_lot(acme.req(hold(0)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, held, "the first call's result");
}

/// A lot taken for a deal stays the deal's through a reservation that names none,
/// and belongs to no deal once it returns to the market (a release, a lapse); every
/// change names the deal.
#[tokio::test]
async fn a_lots_deal_stays_until_it_returns_to_the_market_and_every_change_names_it() {
    let app = TestApp::spawn().await;
    let admin = admin(&app).await;
    let acme = &app.acme;
    let (_, stage) = app.project_with_stage(acme, "kept").await;
    let reserved = app.lot(acme, &stage, "1", "500000.00").await;
    let released = app.lot(acme, &stage, "2", "500000.00").await;
    let lapsed = app.lot(acme, &stage, "3", "500000.00").await;
    for lot in [&reserved, &released, &lapsed] {
        act(&app, acme, "hold", lot.id).await;
        take_for(&app, acme, lot.id, 7).await;
    }

    let now = act(&app, acme, "reserve", reserved.id).await;
    assert_eq!((now.status.as_str(), now.deal_id), ("reserved", 7));
    let now = act(&app, acme, "exchange", reserved.id).await;
    assert_eq!((now.status.as_str(), now.deal_id), ("exchanged", 7));
    let now = act(&app, acme, "release", released.id).await;
    assert_eq!((now.status.as_str(), now.deal_id), ("available", 0));
    lapse(&app, acme, lapsed.id).await;
    assert_eq!(app.get_lot(acme, lapsed.id).await.deal_id, 0);

    for (lot, to, actor) in [
        (&reserved, "exchanged", acme.user_id),
        (&released, "available", acme.user_id),
        (&lapsed, "available", 0),
    ] {
        let (_, last_to, _, deal, by) = last_change(&app, acme, lot.id).await;
        assert_eq!((last_to.as_str(), deal, by), (to, 7, actor));
        let (_, announced) = outbox::<LotStatusChanged>(&admin, STATUS_CHANGED, lot.id)
            .await
            .pop()
            .unwrap();
        assert_eq!((announced.to_status.as_str(), announced.deal_id), (to, 7));
    }
    let reserving = &history(&app, acme, reserved.id).await[1];
    assert_eq!(
        (reserving.to_status.as_str(), reserving.deal_id),
        ("reserved", 7)
    );
}
