//! Issue 11's crm side: LoseDeal and reopening announce `crm.deal.lost` and
//! `crm.deal.reopened` once, in the transaction of the change; a lot has one won deal
//! per tenant (sequentially and under racing calls); and crm's consumers of property's
//! lot events, through a real private NATS JetStream: `property.lot.sale_refused`
//! flags the won deal's `lot_conflict` and gives its assignee one task, and
//! `property.lot.status_changed` notes the change on the lot's other open deals.
//!
//! Property's events are appended to a property outbox in a database of its own (as
//! property's would be) and relayed by the real relay.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveTime, TimeZone as _, Utc};
use futures::future::join_all;
use sqlx::postgres::PgPoolOptions;
use tonic::Code;

use fusion_events::relay::Relay;
use fusion_events::{Event, EventMetrics, RelayConfig};
use fusion_proto::crm::v1 as pb;
use fusion_proto::property::v1::{LotSaleRefused, LotStatusChanged};
use fusion_testkit::{PrivateNats, TestDatabase, reason};

use crate::calls::{lose_deal, move_deal};
use crate::helpers::{TestApp, User, admin_get, expect_code, mask};

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn create(app: &TestApp, who: &User, deal: pb::Deal) -> pb::Deal {
    app.create(who, deal).await.expect("deal created")
}

/// A deal of `who` titled `title` on lot `lot` (0: none).
async fn deal_on(app: &TestApp, who: &User, title: &str, lot: i64) -> pb::Deal {
    create(
        app,
        who,
        pb::Deal {
            title: title.into(),
            lot_id: lot,
            ..Default::default()
        },
    )
    .await
}

async fn get(app: &TestApp, who: &User, id: i64) -> pb::Deal {
    app.get::<pb::Deal>(who, id).await.expect("deal read")
}

async fn win(app: &TestApp, who: &User, id: i64) -> Result<pb::Deal, tonic::Status> {
    app.send(
        who,
        pb::WinDealRequest {
            id,
            ..Default::default()
        },
    )
    .await
}

async fn reopen(app: &TestApp, who: &User, id: i64) -> pb::Deal {
    app.send(
        who,
        pb::MoveDealStageRequest {
            id,
            stage: "property_enquiry".into(),
            ..Default::default()
        },
    )
    .await
    .expect("deal reopened")
}

/// The (type, payload) of every outbox event about deal `id`, in order.
async fn events_of(app: &TestApp, tenant: i64, id: i64) -> Vec<(String, Vec<u8>)> {
    let db = app.crm.state().db.clone();
    let mut tx = db.begin(tenant).await.unwrap();
    let events = sqlx::query_as(
        "SELECT event_type, payload FROM crm.outbox_events
          WHERE aggregate_type = 'deal' AND aggregate_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    events
}

fn types(events: &[(String, Vec<u8>)]) -> Vec<&str> {
    events.iter().map(|(t, _)| t.as_str()).collect()
}

fn decode<M: prost::Message + Default>(payload: &[u8]) -> M {
    M::decode(payload).expect("a valid payload")
}

/// Asserts `result` is LOT_ALREADY_WON naming `winner` and `lot`.
#[track_caller]
fn assert_lot_won_by<T: std::fmt::Debug>(result: Result<T, tonic::Status>, lot: i64, winner: i64) {
    let status = expect_code(result, Code::FailedPrecondition);
    assert_eq!(reason(&status), "LOT_ALREADY_WON", "{status:?}");
    assert!(
        status.message().contains(&format!("deal {winner}")),
        "{status:?}"
    );
    let info = tonic_types::StatusExt::get_details_error_info(&status).unwrap();
    assert_eq!(info.metadata["won_deal_id"], winner.to_string());
    assert_eq!(info.metadata["lot_id"], lot.to_string());
    let failure = tonic_types::StatusExt::get_details_precondition_failure(&status).unwrap();
    assert_eq!(failure.violations[0].subject, format!("deals/{winner}"));
}

#[tokio::test]
async fn losing_and_reopening_a_deal_are_announced_once_each_with_their_payloads() {
    let app = TestApp::spawn().await;
    let lot = app.lot(&app.acme, "announced").await;
    let d = create(
        &app,
        &app.agent,
        pb::Deal {
            title: "Announced".into(),
            lot_id: lot,
            value: "549000.00".into(),
            currency_code: "NZD".into(),
            ..Default::default()
        },
    )
    .await;

    // Moving between open stages announces nothing.
    app.send(&app.agent, move_deal(d.id, "property_reserved"))
        .await
        .unwrap();
    assert!(events_of(&app, app.acme.tenant_id, d.id).await.is_empty());

    // Lost, and the same request retried: one event.
    let lose = pb::LoseDealRequest {
        id: d.id,
        reason: "finance declined".into(),
        request_id: new_id(),
        ..Default::default()
    };
    let lost = app.send(&app.agent, lose.clone()).await.unwrap();
    let again = app.send(&app.agent, lose).await.unwrap();
    assert_eq!(again, lost);
    let events = events_of(&app, app.acme.tenant_id, d.id).await;
    assert_eq!(types(&events), ["crm.deal.lost"]);
    let payload: pb::DealLost = decode(&events[0].1);
    assert_eq!(
        payload,
        pb::DealLost {
            deal_id: d.id,
            lot_id: lot,
            contact_id: 0,
            value: "549000.00".into(),
            currency_code: "NZD".into(),
            close_date: lost.actual_close_date,
            reason: "finance declined".into(),
            acting_user_id: app.agent.user_id,
        }
    );

    // Reopened from lost, and retried: one event.
    let move_back = pb::MoveDealStageRequest {
        id: d.id,
        stage: "property_enquiry".into(),
        request_id: new_id(),
        ..Default::default()
    };
    for _ in 0..2 {
        app.send(&app.agent, move_back.clone()).await.unwrap();
    }
    let events = events_of(&app, app.acme.tenant_id, d.id).await;
    assert_eq!(types(&events), ["crm.deal.lost", "crm.deal.reopened"]);
    let payload: pb::DealReopened = decode(&events[1].1);
    assert_eq!(
        payload,
        pb::DealReopened {
            deal_id: d.id,
            lot_id: lot,
            contact_id: 0,
            value: "549000.00".into(),
            currency_code: "NZD".into(),
            previous_status: "lost".into(),
            stage: "property_enquiry".into(),
            acting_user_id: app.agent.user_id,
        }
    );

    // Won, then reopened by the admin: won, reopened (from won).
    win(&app, &app.agent, d.id).await.unwrap();
    reopen(&app, &app.acme, d.id).await;
    let events = events_of(&app, app.acme.tenant_id, d.id).await;
    assert_eq!(
        types(&events),
        [
            "crm.deal.lost",
            "crm.deal.reopened",
            "crm.deal.won",
            "crm.deal.reopened"
        ]
    );
    let payload: pb::DealReopened = decode(&events[3].1);
    assert_eq!(
        (
            payload.previous_status.as_str(),
            payload.acting_user_id,
            payload.stage.as_str()
        ),
        ("won", app.acme.user_id, "property_enquiry")
    );

    // A refused move writes nothing: an open deal "moved" into its own stage.
    expect_code(
        app.send(&app.agent, move_deal(d.id, "property_enquiry"))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(events_of(&app, app.acme.tenant_id, d.id).await.len(), 4);
}

#[tokio::test]
async fn a_lot_has_one_won_deal_per_tenant() {
    let app = TestApp::spawn().await;
    let lot = app.lot(&app.acme, "once").await;
    let first = deal_on(&app, &app.agent, "First", lot).await;
    let second = deal_on(&app, &app.agent, "Second", lot).await;
    win(&app, &app.agent, first.id).await.unwrap();

    // The second is refused, naming the first, and changes nothing (no event).
    assert_lot_won_by(win(&app, &app.agent, second.id).await, lot, first.id);
    assert_eq!(get(&app, &app.agent, second.id).await, second);
    assert!(
        events_of(&app, app.acme.tenant_id, second.id)
            .await
            .is_empty()
    );

    // Another tenant's deal with that lot id is no rival (its lot is its own matter).
    let theirs = deal_on(&app, &app.globex, "Theirs", 0).await;
    app.exec(
        &app.globex,
        &format!("UPDATE crm.deals SET lot_id = {lot} WHERE tenant_id = $1"),
    )
    .await;
    win(&app, &app.globex, theirs.id).await.unwrap();
    // A deal without a lot is never a rival.
    let lotless = deal_on(&app, &app.agent, "No lot", 0).await;
    win(&app, &app.agent, lotless.id).await.unwrap();

    // Once the first is reopened, the second may win; then the first may not.
    reopen(&app, &app.agent, first.id).await;
    win(&app, &app.agent, second.id).await.unwrap();
    assert_lot_won_by(win(&app, &app.agent, first.id).await, lot, second.id);

    // A deleted winner is no rival, but it cannot come back as a second winner.
    let third = deal_on(&app, &app.agent, "Third", lot).await;
    app.delete::<pb::Deal>(&app.agent, second.id, "")
        .await
        .unwrap();
    win(&app, &app.agent, third.id).await.unwrap();
    assert_lot_won_by(
        app.undelete::<pb::Deal>(&app.agent, second.id).await,
        lot,
        third.id,
    );
    // A deleted open deal comes back whatever the lot's winner.
    app.delete::<pb::Deal>(&app.agent, first.id, "")
        .await
        .unwrap();
    app.undelete::<pb::Deal>(&app.agent, first.id)
        .await
        .unwrap();

    // A won deal cannot take a lot another deal has won; an open one can.
    let other_lot = app.lot(&app.acme, "other").await;
    let moving = deal_on(&app, &app.agent, "Moving", other_lot).await;
    win(&app, &app.agent, moving.id).await.unwrap();
    let to_lot = |id: i64| {
        app.agent.req(pb::UpdateDealRequest {
            deal: Some(pb::Deal {
                id,
                lot_id: lot,
                ..Default::default()
            }),
            update_mask: mask(&["lot_id"]),
        })
    };
    assert_lot_won_by(
        app.deals().update_deal(to_lot(moving.id)).await,
        lot,
        third.id,
    );
    assert_eq!(get(&app, &app.agent, moving.id).await.lot_id, other_lot);
    let open = deal_on(&app, &app.agent, "Open", other_lot).await;
    app.deals().update_deal(to_lot(open.id)).await.unwrap();
    // Nor can a deal be won into a won stage by MoveDealStage (WinDeal only).
    expect_code(
        app.send(&app.agent, move_deal(open.id, "settlement_handover"))
            .await,
        Code::InvalidArgument,
    );

    // The database holds the rule whatever the code does.
    let db = app.crm.state().db.clone();
    let mut tx = db.begin(app.acme.tenant_id).await.unwrap();
    let err = sqlx::query(
        "UPDATE crm.deals SET stage = 'settlement_handover', status = 'won',
                actual_close_date = current_date
          WHERE id = $1",
    )
    .bind(open.id)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|e| e.constraint()),
        Some("deals_won_lot_key")
    );
}

#[tokio::test]
async fn of_deals_racing_to_win_one_lot_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let lot = app.lot(&app.acme, "race").await;
    let mut racers = Vec::new();
    for i in 0..8 {
        racers.push(deal_on(&app, &app.agent, &format!("Racer {i}"), lot).await);
    }
    for round in 0..3 {
        let results = join_all(racers.iter().map(|d| {
            let app = &app;
            async move { (d.id, win(app, &app.agent, d.id).await) }
        }))
        .await;
        let winners: Vec<i64> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let winner = winners[0];
        for (_, result) in results.into_iter().filter(|(id, _)| *id != winner) {
            assert_lot_won_by(result, lot, winner);
        }
        let won: i64 = {
            let db = app.crm.state().db.clone();
            let mut tx = db.begin(app.acme.tenant_id).await.unwrap();
            let n = sqlx::query_scalar(
                "SELECT count(*) FROM crm.deals WHERE lot_id = $1 AND status = 'won'",
            )
            .bind(lot)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
            n
        };
        assert_eq!(won, 1);
        reopen(&app, &app.agent, winner).await;
    }

    // A won deal moving onto a lot races a WinDeal on it: one of the two gets it.
    for round in 0..3 {
        let target = deal_on(&app, &app.agent, &format!("Target {round}"), lot).await;
        let elsewhere = app.lot(&app.acme, &format!("elsewhere-{round}")).await;
        let mover = deal_on(&app, &app.agent, &format!("Mover {round}"), elsewhere).await;
        win(&app, &app.agent, mover.id).await.unwrap();
        let mut deals = app.deals();
        let update = deals.update_deal(app.agent.req(pb::UpdateDealRequest {
            deal: Some(pb::Deal {
                id: mover.id,
                lot_id: lot,
                ..Default::default()
            }),
            update_mask: mask(&["lot_id"]),
        }));
        let (moved, won) = tokio::join!(update, win(&app, &app.agent, target.id));
        assert!(
            moved.is_ok() != won.is_ok(),
            "round {round}: exactly one may win lot {lot}: {moved:?} {won:?}"
        );
        match (moved, won) {
            (Ok(_), won) => assert_lot_won_by(won, lot, mover.id),
            (moved, Ok(_)) => assert_lot_won_by(moved, lot, target.id),
            _ => unreachable!(),
        }
        // Free the lot for the next round.
        for id in [mover.id, target.id] {
            if get(&app, &app.agent, id).await.status == "won" {
                reopen(&app, &app.agent, id).await;
            }
        }
    }
}

/// Crm with its consumers on a private NATS, and a property outbox (in a database of
/// its own, as property's would be) with its relay.
struct Flow {
    app: TestApp,
    crm: fusion_crm::Application,
    _nats: PrivateNats,
    property: TestDatabase,
    relay: Relay,
    js: async_nats::jetstream::Context,
    admin: sqlx::PgPool,
    zone: chrono_tz::Tz,
}

/// Far from UTC, so a due time computed in UTC would be hours off.
const ZONE: chrono_tz::Tz = chrono_tz::Tz::Pacific__Kiritimati;

impl Flow {
    async fn start() -> Self {
        let app = TestApp::spawn().await;
        let nats = PrivateNats::start();
        let url = nats.url();
        let crm = TestApp::replica_configured(
            &app.db,
            app.identity_channel(),
            app.property_channel.clone(),
            |config| {
                config.service.nats_url = Some(url);
                config.events_time_zone = ZONE;
            },
        )
        .await;
        let property = TestDatabase::create(&[("property", &fusion_property::MIGRATOR)]).await;
        let owner = PgPoolOptions::new()
            .max_connections(1)
            .connect(&property.owner_url)
            .await
            .unwrap();
        let client = fusion_events::connect(&nats.url(), "crm-tests")
            .await
            .unwrap();
        let relay = Relay::new(
            owner,
            client.clone(),
            RelayConfig::new("property"),
            EventMetrics::new(),
        );
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect(&app.db.admin_url)
            .await
            .unwrap();
        Self {
            app,
            crm,
            _nats: nats,
            property,
            relay,
            js: async_nats::jetstream::new(client),
            admin,
            zone: ZONE,
        }
    }

    /// Commits `event_type` about `lot_id` with `payload` in `tenant`'s property
    /// outbox and relays it.
    async fn publish(
        &self,
        tenant: i64,
        event_type: &str,
        lot_id: i64,
        payload: &impl prost::Message,
    ) {
        let db = self.property.app_db("property").await;
        let mut tx = db.begin(tenant).await.unwrap();
        fusion_events::outbox::append(&mut tx, "property", Event::new(event_type, lot_id, payload))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(self.relay.run_once().await.unwrap().sent, 1);
    }

    async fn refuse(&self, tenant: i64, refused: LotSaleRefused) {
        let lot = refused.lot_id;
        self.publish(tenant, "property.lot.sale_refused", lot, &refused)
            .await;
    }

    async fn change(&self, tenant: i64, changed: LotStatusChanged) {
        let lot = changed.lot_id;
        self.publish(tenant, "property.lot.status_changed", lot, &changed)
            .await;
    }

    /// Publishes the last event of `event_type` in the stream once more, under a new
    /// message id, so JetStream stores and delivers it again: a redelivery the
    /// consumer's inbox must absorb.
    async fn redeliver_last(&self, event_type: &str) {
        let stream = self.js.get_stream("FUSION").await.unwrap();
        let last = stream
            .get_last_raw_message_by_subject(&format!("fusion.{event_type}"))
            .await
            .unwrap();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", new_id().as_str());
        self.js
            .publish_with_headers(last.subject.to_string(), headers, last.payload)
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Waits until `consumer`'s inbox holds `count` events (each applied or found to
    /// need nothing), with a deadline.
    async fn applied(&self, consumer: &str, count: i64) {
        let start = Instant::now();
        loop {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM crm.inbox_events WHERE consumer = $1")
                    .bind(consumer)
                    .fetch_one(&self.admin)
                    .await
                    .unwrap();
            if n >= count {
                assert_eq!(n, count, "{consumer} applied more than expected");
                return;
            }
            if start.elapsed() >= Duration::from_secs(20) {
                let stream = self.js.get_stream("FUSION").await.unwrap();
                let info = stream
                    .consumer_info(consumer)
                    .await
                    .map(|i| format!("{i:?}"));
                panic!(
                    "{consumer}: {count} events not consumed within 20 s ({n}); consumer: {info:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn tasks_on(&self, who: &User, deal: i64) -> Vec<pb::Task> {
        self.app
            .send(
                who,
                pb::ListTasksRequest {
                    taskable_type: "deal".into(),
                    taskable_id: deal,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .tasks
    }

    async fn notes_on(&self, who: &User, deal: i64) -> Vec<pb::Note> {
        self.app
            .send(
                who,
                pb::ListNotesRequest {
                    notable_type: "deal".into(),
                    notable_id: deal,
                    show_deleted: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .notes
    }

    /// The last second of the tenant's day (in the consumers' zone) at `at`.
    fn end_of_day(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let day = at.with_timezone(&self.zone).date_naive();
        self.zone
            .from_local_datetime(&day.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap()))
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }
}

fn refusal(deal: i64, lot: i64, status: &str, sold_to: i64) -> LotSaleRefused {
    LotSaleRefused {
        lot_id: lot,
        deal_id: deal,
        lot_status: status.into(),
        sold_to_deal_id: sold_to,
    }
}

#[tokio::test]
async fn a_refused_sale_flags_the_won_deal_once_and_gives_its_assignee_one_task() {
    let f = Flow::start().await;
    let app = &f.app;
    let lot = app.lot(&app.acme, "refused").await;
    let assigned = create(
        app,
        &app.acme,
        pb::Deal {
            title: "Assigned".into(),
            lot_id: lot,
            assignee_user_id: app.agent.user_id,
            ..Default::default()
        },
    )
    .await;
    let before = get(
        app,
        &app.agent,
        win(app, &app.agent, assigned.id).await.unwrap().id,
    )
    .await;
    assert!(before.lot_conflict.is_none());
    let withdrawn_lot = app.lot(&app.acme, "withdrawn").await;
    let unassigned = deal_on(app, &app.acme, "Unassigned", withdrawn_lot).await;
    win(app, &app.acme, unassigned.id).await.unwrap();

    let sent = Utc::now();
    f.refuse(
        app.acme.tenant_id,
        refusal(assigned.id, lot, "exchanged", 9),
    )
    .await;
    f.refuse(
        app.acme.tenant_id,
        refusal(unassigned.id, withdrawn_lot, "withdrawn", 0),
    )
    .await;
    f.applied(fusion_crm::lot_sales::CONSUMER, 2).await;
    let done = Utc::now();

    // The deal shows its conflict, and is still won.
    let flagged = get(app, &app.agent, assigned.id).await;
    assert_eq!(flagged.status, "won");
    let conflict = flagged.lot_conflict.clone().expect("a lot conflict");
    assert_eq!(
        (conflict.lot_status.as_str(), conflict.sold_to_deal_id),
        ("exchanged", 9)
    );
    let detected = conflict.detect_time.unwrap();
    assert!(detected.seconds >= sent.timestamp() - 1 && detected.seconds <= done.timestamp() + 1);
    assert_ne!(flagged.etag, before.etag);

    // Its assignee has one high-priority task on it, due at the end of the tenant's
    // day, assigned by the consumer (no service account yet: nobody).
    let tasks = f.tasks_on(&app.agent, assigned.id).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task = &tasks[0];
    assert_eq!(
        task.title,
        format!("Lot {lot} could not be sold to this deal: it is already exchanged for deal 9")
    );
    assert!(task.description.contains("deal 9"), "{task:?}");
    assert_eq!(
        (
            task.assignee_user_id,
            task.assigner_user_id,
            task.priority.as_str(),
            task.status.as_str()
        ),
        (app.agent.user_id, 0, "high", "open")
    );
    let due = task.due_time.unwrap().seconds;
    assert!(
        due == f.end_of_day(sent).timestamp() || due == f.end_of_day(done).timestamp(),
        "due {due}, expected the end of {} in {}",
        sent.with_timezone(&f.zone).date_naive(),
        f.zone
    );
    // The unassigned deal's task is unassigned, and says the lot is withdrawn.
    let other = f.tasks_on(&app.acme, unassigned.id).await;
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].assignee_user_id, 0);
    assert_eq!(
        other[0].title,
        format!("Lot {withdrawn_lot} could not be sold to this deal: it is withdrawn")
    );
    let unassigned_conflict = get(app, &app.acme, unassigned.id)
        .await
        .lot_conflict
        .unwrap();
    assert_eq!(
        (
            unassigned_conflict.lot_status.as_str(),
            unassigned_conflict.sold_to_deal_id
        ),
        ("withdrawn", 0)
    );

    // A redelivery of the same event has no second effect; nor has a second refusal of
    // the same sale (another event) while the conflict stands. The barrier after
    // them is applied only after them (one message in flight, in order).
    f.redeliver_last("property.lot.sale_refused").await;
    f.refuse(
        app.acme.tenant_id,
        refusal(assigned.id, lot, "exchanged", 9),
    )
    .await;
    let barrier = deal_on(app, &app.acme, "Barrier", 0).await;
    f.refuse(app.acme.tenant_id, refusal(barrier.id, lot, "exchanged", 9))
        .await;
    f.applied(fusion_crm::lot_sales::CONSUMER, 4).await;
    assert_eq!(f.tasks_on(&app.agent, assigned.id).await, tasks);
    assert_eq!(get(app, &app.agent, assigned.id).await, flagged);
    assert_eq!(f.tasks_on(&app.acme, unassigned.id).await, other);
    // The barrier deal is open: a refusal for it is stale.
    assert!(f.tasks_on(&app.acme, barrier.id).await.is_empty());
    assert!(get(app, &app.acme, barrier.id).await.lot_conflict.is_none());

    // Reopening the deal clears the conflict; so does giving a won deal another lot.
    let reopened = reopen(app, &app.agent, assigned.id).await;
    assert!(reopened.lot_conflict.is_none());
    let free_lot = app.lot(&app.acme, "free").await;
    let moved = app
        .update(
            &app.acme,
            pb::Deal {
                id: unassigned.id,
                lot_id: free_lot,
                ..Default::default()
            },
            &["lot_id"],
        )
        .await
        .unwrap();
    assert!(moved.lot_conflict.is_none());
    assert_eq!(moved.status, "won");
    // Changing something else keeps a conflict.
    win(app, &app.agent, assigned.id).await.unwrap();
    f.refuse(app.acme.tenant_id, refusal(assigned.id, lot, "settled", 9))
        .await;
    f.applied(fusion_crm::lot_sales::CONSUMER, 5).await;
    let retitled = app
        .update(
            &app.agent,
            pb::Deal {
                id: assigned.id,
                title: "Retitled".into(),
                ..Default::default()
            },
            &["title"],
        )
        .await
        .unwrap();
    assert_eq!(retitled.lot_conflict.unwrap().lot_status, "settled");
    // The deal won again after a reopen was refused again: a second task.
    assert_eq!(f.tasks_on(&app.agent, assigned.id).await.len(), 2);
}

#[tokio::test]
async fn a_refused_sale_for_a_deal_no_longer_won_with_that_lot_or_of_another_tenant_changes_nothing()
 {
    let f = Flow::start().await;
    let app = &f.app;
    let lot = app.lot(&app.acme, "stale").await;
    let reopened = deal_on(app, &app.agent, "Reopened", lot).await;
    win(app, &app.agent, reopened.id).await.unwrap();
    reopen(app, &app.agent, reopened.id).await;
    let other_lot = app.lot(&app.acme, "stale-other").await;
    let relotted = deal_on(app, &app.agent, "Relotted", other_lot).await;
    win(app, &app.agent, relotted.id).await.unwrap();
    let won = deal_on(app, &app.agent, "Won", lot).await;
    win(app, &app.agent, won.id).await.unwrap();
    let deleted = deal_on(app, &app.agent, "Deleted", 0).await;
    app.delete::<pb::Deal>(&app.agent, deleted.id, "")
        .await
        .unwrap();

    // Reopened since; won with another lot; globex's event naming acme's deal; a
    // deleted deal; a deal that does not exist.
    f.refuse(
        app.acme.tenant_id,
        refusal(reopened.id, lot, "exchanged", 1),
    )
    .await;
    f.refuse(
        app.acme.tenant_id,
        refusal(relotted.id, lot, "exchanged", 1),
    )
    .await;
    f.refuse(app.globex.tenant_id, refusal(won.id, lot, "exchanged", 1))
        .await;
    f.refuse(app.acme.tenant_id, refusal(deleted.id, lot, "exchanged", 1))
        .await;
    f.refuse(app.acme.tenant_id, refusal(999_999, lot, "exchanged", 1))
        .await;
    f.applied(fusion_crm::lot_sales::CONSUMER, 5).await;
    for id in [reopened.id, relotted.id, won.id] {
        assert!(get(app, &app.agent, id).await.lot_conflict.is_none());
        assert!(f.tasks_on(&app.agent, id).await.is_empty());
    }
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM crm.tasks")
        .fetch_one(&f.admin)
        .await
        .unwrap();
    assert_eq!(tasks, 0);

    // A malformed refusal fails and is dead-lettered after its deliveries, without
    // stopping the next one.
    f.refuse(app.acme.tenant_id, refusal(won.id, lot, "Not A Status", 1))
        .await;
    f.refuse(app.acme.tenant_id, refusal(won.id, lot, "exchanged", 1))
        .await;
    f.applied(fusion_crm::lot_sales::CONSUMER, 6).await;
    assert_eq!(
        get(app, &app.agent, won.id)
            .await
            .lot_conflict
            .unwrap()
            .lot_status,
        "exchanged"
    );
    let dead: Vec<(String, String)> =
        sqlx::query_as("SELECT consumer, error FROM crm.dead_letters WHERE tenant_id = $1")
            .bind(app.acme.tenant_id)
            .fetch_all(&f.admin)
            .await
            .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0, fusion_crm::lot_sales::CONSUMER);
    assert!(dead[0].1.contains("lot_status"), "{dead:?}");
}

fn status_change(lot: i64, from: &str, to: &str, deal: i64) -> LotStatusChanged {
    LotStatusChanged {
        lot_id: lot,
        project_id: 1,
        stage_id: 1,
        lot_number: "12".into(),
        from_status: from.into(),
        to_status: to.into(),
        deal_id: deal,
        reason: String::new(),
        actor_user_id: 1,
    }
}

#[tokio::test]
async fn a_lot_status_change_is_noted_once_on_the_lots_other_open_deals_of_its_tenant_only() {
    let f = Flow::start().await;
    let app = &f.app;
    let lot = app.lot(&app.acme, "noted").await;
    let other_lot = app.lot(&app.acme, "not-noted").await;
    let made_for = deal_on(app, &app.agent, "Made for", lot).await;
    let open = deal_on(app, &app.agent, "Open", lot).await;
    let also_open = deal_on(app, &app.acme, "Also open", lot).await;
    let won = deal_on(app, &app.agent, "Won", lot).await;
    win(app, &app.agent, won.id).await.unwrap();
    let lost = deal_on(app, &app.agent, "Lost", lot).await;
    app.send(&app.agent, lose_deal(lost.id, "gone"))
        .await
        .unwrap();
    let deleted = deal_on(app, &app.agent, "Deleted", lot).await;
    app.delete::<pb::Deal>(&app.agent, deleted.id, "")
        .await
        .unwrap();
    let elsewhere = deal_on(app, &app.agent, "Elsewhere", other_lot).await;
    let theirs = deal_on(app, &app.globex, "Theirs", 0).await;
    app.exec(
        &app.globex,
        &format!("UPDATE crm.deals SET lot_id = {lot} WHERE tenant_id = $1"),
    )
    .await;

    f.change(
        app.acme.tenant_id,
        status_change(lot, "available", "reserved", made_for.id),
    )
    .await;
    f.applied(fusion_crm::lot_notes::CONSUMER, 1).await;
    let expected = format!(
        "Lot 12 is now reserved for deal {} (was available).",
        made_for.id
    );
    for deal in [&open, &also_open] {
        let notes = f.notes_on(&app.agent, deal.id).await;
        assert_eq!(notes.len(), 1, "{notes:?}");
        let note = &notes[0];
        assert_eq!(
            (
                note.title.as_str(),
                note.content.as_str(),
                note.author_user_id,
                note.notable_type.as_str(),
                note.notable_id
            ),
            (
                "Lot 12 is now reserved",
                expected.as_str(),
                0,
                "deal",
                deal.id
            )
        );
    }
    for deal in [&made_for, &won, &lost, &deleted, &elsewhere] {
        assert!(
            f.notes_on(&app.agent, deal.id).await.is_empty(),
            "{} has a note",
            deal.title
        );
    }
    assert!(f.notes_on(&app.globex, theirs.id).await.is_empty());

    // A redelivery writes no second note; a change in globex notes only globex's deal.
    f.redeliver_last("property.lot.status_changed").await;
    f.change(
        app.globex.tenant_id,
        status_change(lot, "hold", "available", 0),
    )
    .await;
    f.applied(fusion_crm::lot_notes::CONSUMER, 2).await;
    for deal in [&open, &also_open] {
        assert_eq!(f.notes_on(&app.agent, deal.id).await.len(), 1);
    }
    let globex_notes = f.notes_on(&app.globex, theirs.id).await;
    assert_eq!(globex_notes.len(), 1);
    assert_eq!(
        globex_notes[0].content,
        "Lot 12 is now available (was on hold)."
    );
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM crm.notes")
        .fetch_one(&f.admin)
        .await
        .unwrap();
    assert_eq!(all, 3);

    // The crm replica counts its consumers' deliveries, the redelivery included, on
    // /metrics.
    let metrics = admin_get(f.crm.admin_addr(), "/metrics").await;
    assert!(
        metrics.contains(r#"fusion_events_consumer_deliveries_total{consumer="crm-lot-notes"} 3"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_lot_with_more_open_deals_than_the_cap_notes_the_most_recent_in_one_bounded_event() {
    let f = Flow::start().await;
    let app = &f.app;
    let lot = app.lot(&app.acme, "crowded").await;
    let first = deal_on(app, &app.agent, "First", lot).await;
    let cap = fusion_crm::lot_notes::MAX_NOTED_DEALS;
    // The rest straight into the table (CreateDeal has its own tests), updated after
    // the first, which is therefore the one left out.
    app.exec(
        &app.acme,
        &format!(
            "INSERT INTO crm.deals (tenant_id, lot_id, title, stage, status, updated_at)
             SELECT $1, {lot}, 'Crowd ' || n, 'property_enquiry', 'open',
                    now() + n * interval '1 second'
               FROM generate_series(1, {cap}) n"
        ),
    )
    .await;
    f.change(
        app.acme.tenant_id,
        status_change(lot, "available", "hold", 0),
    )
    .await;
    f.applied(fusion_crm::lot_notes::CONSUMER, 1).await;
    let notes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM crm.notes WHERE notable_type = 'deal'")
            .fetch_one(&f.admin)
            .await
            .unwrap();
    assert_eq!(notes, cap);
    assert!(f.notes_on(&app.agent, first.id).await.is_empty());
}
