//! Lots: the lifecycle over the wire, concurrency, exact project figures, holds that
//! lapse, prices that change on schedule, and the live availability feed.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt as _;
use tonic::Code;

use fusion_proto::property::v1 as pb;

use crate::helpers::{READER, TestApp, User, expect_code, reason, violated_fields};

/// Calls one lifecycle method by name on lot `id`.
async fn act(app: &TestApp, who: &User, action: &str, id: i64) -> Result<pb::Lot, tonic::Status> {
    act_with(app, who, action, id, "", &format!("test: {action}")).await
}

/// Calls one lifecycle method by name on lot `id` with a request id and a reason.
async fn act_with(
    app: &TestApp,
    who: &User,
    action: &str,
    id: i64,
    request_id: &str,
    reason: &str,
) -> Result<pb::Lot, tonic::Status> {
    let mut lots = app.lots();
    let reason = reason.to_owned();
    let request_id = request_id.to_owned();
    let result = match action {
        "hold" => {
            lots.hold_lot(who.req(pb::HoldLotRequest {
                id,
                reason,
                request_id,
                ..Default::default()
            }))
            .await
        }
        "release" => {
            lots.release_lot(who.req(pb::ReleaseLotRequest {
                id,
                reason,
                request_id,
                ..Default::default()
            }))
            .await
        }
        "reserve" => {
            lots.reserve_lot(who.req(pb::ReserveLotRequest {
                id,
                deposit_amount: "5000.00".into(),
                reason,
                request_id,
                ..Default::default()
            }))
            .await
        }
        "exchange" => {
            lots.exchange_lot(who.req(pb::ExchangeLotRequest {
                id,
                reason,
                request_id,
                ..Default::default()
            }))
            .await
        }
        "unconditional" => {
            lots.mark_lot_unconditional(who.req(pb::MarkLotUnconditionalRequest {
                id,
                reason,
                request_id,
                ..Default::default()
            }))
            .await
        }
        "settle" => {
            lots.settle_lot(who.req(pb::SettleLotRequest {
                id,
                reason,
                request_id,
                ..Default::default()
            }))
            .await
        }
        "withdraw" => {
            lots.withdraw_lot(who.req(pb::WithdrawLotRequest {
                id,
                reason,
                request_id,
                ..Default::default()
            }))
            .await
        }
        "revert" => {
            lots.revert_lot(who.req(pb::RevertLotRequest {
                id,
                reason,
                request_id,
                ..Default::default()
            }))
            .await
        }
        other => panic!("no action {other}"),
    };
    result.map(tonic::Response::into_inner)
}

const ACTIONS: [&str; 8] = [
    "hold",
    "release",
    "reserve",
    "exchange",
    "unconditional",
    "settle",
    "withdraw",
    "revert",
];

/// The path of actions from a fresh (available) lot to each status.
fn path_to(status: &str) -> &'static [&'static str] {
    match status {
        "available" => &[],
        "hold" => &["hold"],
        "reserved" => &["reserve"],
        "exchanged" => &["reserve", "exchange"],
        "unconditional" => &["reserve", "exchange", "unconditional"],
        "settled" => &["reserve", "exchange", "unconditional", "settle"],
        "withdrawn" => &["withdraw"],
        other => panic!("no status {other}"),
    }
}

#[tokio::test]
async fn every_allowed_transition_succeeds_and_every_other_is_refused_naming_the_state() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (_, stage) = app.project_with_stage(who, "lifecycle").await;
    let allowed: HashMap<(&str, &str), &str> = [
        (("available", "hold"), "hold"),
        (("available", "reserve"), "reserved"),
        (("available", "withdraw"), "withdrawn"),
        (("hold", "release"), "available"),
        (("hold", "reserve"), "reserved"),
        (("hold", "withdraw"), "withdrawn"),
        (("hold", "revert"), "available"),
        (("reserved", "exchange"), "exchanged"),
        (("reserved", "revert"), "available"),
        (("exchanged", "unconditional"), "unconditional"),
        (("exchanged", "revert"), "reserved"),
        (("unconditional", "settle"), "settled"),
        (("unconditional", "revert"), "exchanged"),
        (("withdrawn", "revert"), "available"),
    ]
    .into_iter()
    .collect();
    let mut n = 0;
    for from in [
        "available",
        "hold",
        "reserved",
        "exchanged",
        "unconditional",
        "settled",
        "withdrawn",
    ] {
        for action in ACTIONS {
            n += 1;
            let lot = app.lot(who, &stage, &format!("L{n}"), "500000.00").await;
            for step in path_to(from) {
                act(&app, who, step, lot.id).await.expect("path step");
            }
            let result = act(&app, who, action, lot.id).await;
            match allowed.get(&(from, action)) {
                Some(to) => {
                    let moved = result.unwrap_or_else(|e| panic!("{from} + {action}: {e:?}"));
                    assert_eq!(&moved.status, to, "{from} + {action}");
                }
                None => {
                    let status = expect_code(result, Code::FailedPrecondition);
                    assert!(
                        status.message().contains(&format!("a lot that is {from}")),
                        "{from} + {action}: {}",
                        status.message()
                    );
                    assert_eq!(reason(&status), format!("LOT_{}", from.to_uppercase()));
                    assert_eq!(app.get_lot(who, lot.id).await.status, from);
                }
            }
        }
    }
}

#[tokio::test]
async fn of_many_concurrent_reservations_of_one_lot_exactly_one_wins() {
    let app = TestApp::spawn().await;
    let (project, stage) = app.project_with_stage(&app.acme, "rush").await;
    let lot = app.lot(&app.acme, &stage, "1", "610000.00").await;
    let attempts = (0..24).map(|i| {
        let app = &app;
        let who = app.user(1, 100 + i, crate::helpers::WRITER);
        async move { act(app, &who, "reserve", lot.id).await }
    });
    let results = futures::future::join_all(attempts).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    let winner = 100 + i64::try_from(results.iter().position(Result::is_ok).unwrap()).unwrap();
    for refused in results.into_iter().filter_map(Result::err) {
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        assert!(refused.message().contains("reserved"));
    }
    let history = app
        .lots()
        .list_lot_status_changes(app.acme.req(pb::ListLotStatusChangesRequest {
            lot_id: lot.id,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    // created, then one reservation.
    assert_eq!(history.total_size, 2);
    assert_eq!(history.lot_status_changes[0].to_status, "reserved");
    assert_eq!(
        history.lot_status_changes[0].actor_user_id, winner,
        "who won is on record"
    );
    assert_eq!(history.lot_status_changes[0].reason, "test: reserve");
    assert_eq!(
        history.lot_status_changes[1].actor_user_id,
        app.acme.user_id
    );
    assert_eq!(
        app.get_project(&app.acme, project.id)
            .await
            .available_lot_count,
        0
    );
}

#[tokio::test]
async fn project_figures_stay_exact_under_concurrent_writes() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (project, stage) = app.project_with_stage(who, "figures").await;
    // 30 lots created concurrently at prices 400,000 .. 429,000.
    let created = futures::future::join_all((0..30).map(|i| {
        let app = &app;
        let stage = &stage;
        async move {
            app.lot(
                who,
                stage,
                &format!("F{i}"),
                &format!("{}.00", 400_000 + i * 1000),
            )
            .await
        }
    }))
    .await;
    let p = app.get_project(who, project.id).await;
    assert_eq!((p.lot_count, p.available_lot_count), (30, 30));
    assert_eq!(
        (p.min_price.as_str(), p.max_price.as_str()),
        ("400000.00", "429000.00")
    );

    // Concurrently: reserve the 10 cheapest, withdraw the 5 dearest, delete 5 in between.
    let work = created.iter().enumerate().map(|(i, lot)| {
        let app = &app;
        async move {
            match i {
                0..10 => act(app, who, "reserve", lot.id).await.map(|_| ()),
                25..30 => act(app, who, "withdraw", lot.id).await.map(|_| ()),
                10..15 => app
                    .lots()
                    .delete_lot(who.req(pb::DeleteLotRequest {
                        id: lot.id,
                        etag: String::new(),
                    }))
                    .await
                    .map(|_| ()),
                _ => Ok(()),
            }
        }
    });
    for r in futures::future::join_all(work).await {
        r.expect("every write succeeds");
    }
    let p = app.get_project(who, project.id).await;
    assert_eq!(p.lot_count, 25, "deleted lots do not count");
    assert_eq!(p.available_lot_count, 10, "lots 15..25 are still available");
    assert_eq!(
        (p.min_price.as_str(), p.max_price.as_str()),
        ("415000.00", "424000.00")
    );
}

#[tokio::test]
async fn a_lapsed_hold_is_released_by_housekeeping_and_recorded() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (project, stage) = app.project_with_stage(who, "holds").await;
    let lot = app.lot(who, &stage, "9", "450000.00").await;
    let held = act(&app, who, "hold", lot.id).await.unwrap();
    assert_eq!(held.status, "hold");
    assert!(held.hold_expire_time.is_some());
    assert_eq!(
        app.get_project(who, project.id).await.available_lot_count,
        0
    );
    // Let the hold lapse as if its time had passed.
    let mut tx = app.app.state().db.begin(1).await.unwrap();
    sqlx::query(
        "UPDATE property.lots SET hold_expires_at = now() - interval '1 second' WHERE id = $1",
    )
    .bind(lot.id)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut released = None;
    for _ in 0..100 {
        let now = app.get_lot(who, lot.id).await;
        if now.status == "available" {
            released = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let released = released.expect("the housekeeping job released the hold");
    assert!(released.hold_expire_time.is_none());
    assert_eq!(
        app.get_project(who, project.id).await.available_lot_count,
        1
    );
    let history = app
        .lots()
        .list_lot_status_changes(who.req(pb::ListLotStatusChangesRequest {
            lot_id: lot.id,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.lot_status_changes[0].from_status, "hold");
    assert_eq!(history.lot_status_changes[0].reason, "hold expired");
}

#[tokio::test]
async fn a_hold_longer_than_fourteen_days_or_a_revert_without_reason_is_invalid() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (_, stage) = app.project_with_stage(who, "limits").await;
    let lot = app.lot(who, &stage, "1", "1.00").await;
    let status = expect_code(
        app.lots()
            .hold_lot(who.req(pb::HoldLotRequest {
                id: lot.id,
                hold_duration: Some(prost_types::Duration {
                    seconds: 15 * 24 * 3600,
                    nanos: 0,
                }),
                ..Default::default()
            }))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["hold_duration"]);
    act(&app, who, "reserve", lot.id).await.unwrap();
    let status = expect_code(
        app.lots()
            .revert_lot(who.req(pb::RevertLotRequest {
                id: lot.id,
                reason: " ".into(),
                etag: String::new(),
                request_id: String::new(),
            }))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["reason"]);
}

#[tokio::test]
async fn a_reserved_lot_keeps_its_price_and_prices_are_effective_dated() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (project, stage) = app.project_with_stage(who, "prices").await;
    let lot = app.lot(who, &stage, "3", "500000.00").await;
    let other = app.lot(who, &stage, "4", "520000.00").await;
    let reserved = act(&app, who, "reserve", lot.id).await.unwrap();
    assert_eq!(reserved.reserved_price, "500000.00");
    let repriced = app
        .lots()
        .set_lot_price(who.req(pb::SetLotPriceRequest {
            id: lot.id,
            price: "530000.00".into(),
            reason: "market".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(repriced.price, "530000.00");
    assert_eq!(
        repriced.reserved_price, "500000.00",
        "the buyer keeps the reserved price"
    );

    // A price dated in the future waits, then applies by itself.
    let soon = std::time::SystemTime::now() + Duration::from_secs(1);
    let scheduled = app
        .lots()
        .set_lot_price(who.req(pb::SetLotPriceRequest {
            id: other.id,
            price: "499000.00".into(),
            effective_time: Some(soon.into()),
            reason: "promotion".into(),
            etag: String::new(),
            request_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(scheduled.price, "520000.00", "not yet");
    let mut applied = false;
    for _ in 0..100 {
        if app.get_lot(who, other.id).await.price == "499000.00" {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(applied, "the scheduled price applied");
    let p = app.get_project(who, project.id).await;
    assert_eq!(p.min_price, "499000.00");
    let prices = app
        .lots()
        .list_lot_prices(who.req(pb::ListLotPricesRequest {
            lot_id: other.id,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<&str> = prices.lot_prices.iter().map(|p| p.price.as_str()).collect();
    assert_eq!(listed, ["499000.00", "520000.00"]);
    // A negative or malformed price is refused with the field named.
    let status = expect_code(
        app.lots()
            .set_lot_price(who.req(pb::SetLotPriceRequest {
                id: lot.id,
                price: "-1".into(),
                ..Default::default()
            }))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["price"]);
}

#[tokio::test]
async fn lots_filter_by_features_price_range_and_the_projects_bounding_box() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (_, stage) = app.project_with_stage(who, "search").await;
    let pool = app
        .features()
        .create_feature(who.req(pb::CreateFeatureRequest {
            feature: Some(pb::Feature {
                name: "Pool".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    for (n, price, with_pool) in [
        ("1", "400000", true),
        ("2", "550000", true),
        ("3", "560000", false),
    ] {
        app.lots()
            .create_lot(who.req(pb::CreateLotRequest {
                lot: Some(pb::Lot {
                    stage_id: stage.id,
                    lot_number: n.into(),
                    price: price.into(),
                    bedrooms: Some(4),
                    feature_ids: if with_pool { vec![pool.id] } else { vec![] },
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .unwrap();
    }
    let numbers = |filter: &str| {
        let filter = filter.to_owned();
        let app = &app;
        async move {
            app.lots()
                .list_lots(who.req(pb::ListLotsRequest {
                    filter,
                    order_by: "price desc".into(),
                    ..Default::default()
                }))
                .await
                .unwrap()
                .into_inner()
                .lots
                .into_iter()
                .map(|l| l.lot_number)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(numbers(r#"features:"Pool""#).await, ["2", "1"]);
    assert_eq!(numbers("price >= 500000 AND price <= 555000").await, ["2"]);
    assert_eq!(
        numbers("latitude >= -28 AND latitude <= -27 AND longitude >= 153 AND longitude <= 154")
            .await,
        ["3", "2", "1"]
    );
    assert!(numbers("latitude >= 0").await.is_empty());
    // Renaming the feature keeps the filter true under the new name.
    app.features()
        .update_feature(who.req(pb::UpdateFeatureRequest {
            feature: Some(pb::Feature {
                id: pool.id,
                name: "Lap pool".into(),
                ..Default::default()
            }),
            update_mask: None,
        }))
        .await
        .unwrap();
    assert_eq!(numbers(r#"features:"Lap pool""#).await, ["2", "1"]);
    assert!(numbers(r#"features:"Pool""#).await.is_empty());
    let status = expect_code(
        app.lots()
            .list_lots(who.req(pb::ListLotsRequest {
                filter: "colour = 1".into(),
                ..Default::default()
            }))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["filter"]);
}

#[tokio::test]
async fn another_tenants_lots_are_not_found_and_a_reader_cannot_change_stock() {
    let app = TestApp::spawn().await;
    let (_, stage) = app.project_with_stage(&app.acme, "mine").await;
    let lot = app.lot(&app.acme, &stage, "1", "1.00").await;
    for action in ACTIONS {
        expect_code(act(&app, &app.globex, action, lot.id).await, Code::NotFound);
    }
    expect_code(
        app.lots()
            .get_lot(app.globex.req(pb::GetLotRequest { id: lot.id }))
            .await,
        Code::NotFound,
    );
    let listed = app
        .lots()
        .list_lots(app.globex.req(pb::ListLotsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 0);
    let viewer = app.user(1, 12, READER);
    expect_code(
        act(&app, &viewer, "reserve", lot.id).await,
        Code::PermissionDenied,
    );
    assert_eq!(app.get_lot(&viewer, lot.id).await.status, "available");
    // A lot created in another tenant's stage: the stage is not found.
    expect_code(
        app.lots()
            .create_lot(app.globex.req(pb::CreateLotRequest {
                lot: Some(pb::Lot {
                    stage_id: stage.id,
                    lot_number: "x".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn a_sold_lot_cannot_be_deleted_and_a_stale_etag_is_aborted() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (_, stage) = app.project_with_stage(who, "guards").await;
    let lot = app.lot(who, &stage, "1", "1.00").await;
    let reserved = act(&app, who, "reserve", lot.id).await.unwrap();
    let status = expect_code(
        app.lots()
            .delete_lot(who.req(pb::DeleteLotRequest {
                id: lot.id,
                etag: String::new(),
            }))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "LOT_SOLD");
    expect_code(
        app.lots()
            .exchange_lot(who.req(pb::ExchangeLotRequest {
                id: lot.id,
                reason: String::new(),
                etag: lot.etag.clone(),
                request_id: String::new(),
            }))
            .await,
        Code::Aborted,
    );
    let exchanged = app
        .lots()
        .exchange_lot(who.req(pb::ExchangeLotRequest {
            id: lot.id,
            reason: String::new(),
            etag: reserved.etag,
            request_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(exchanged.status, "exchanged");
}

/// Waits for the next event on a watch stream.
async fn next_event(
    stream: &mut tonic::Streaming<pb::LotAvailabilityEvent>,
) -> pb::LotAvailabilityEvent {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream is open")
        .expect("not an error")
}

#[tokio::test]
async fn watchers_on_any_replica_see_their_tenants_changes_and_never_another_tenants() {
    let app = TestApp::spawn().await;
    let (project, stage) = app.project_with_stage(&app.acme, "live").await;
    let (_, globex_stage) = app.project_with_stage(&app.globex, "theirs").await;
    let lot = app.lot(&app.acme, &stage, "7", "700000.00").await;
    let globex_lot = app.lot(&app.globex, &globex_stage, "7", "1.00").await;

    // Watch through a second replica; change stock through the first.
    let replica = TestApp::replica(&app.db, &app.keys).await;
    let channel = fusion_testkit::connect_channel(replica.grpc_addr()).await;
    let mut watcher =
        fusion_proto::property::v1::lot_service_client::LotServiceClient::new(channel);
    let mut stream = watcher
        .watch_lot_availability(app.acme.req(pb::WatchLotAvailabilityRequest {
            project_id: project.id,
        }))
        .await
        .unwrap()
        .into_inner();
    // Another tenant's change first: it must never arrive.
    act(&app, &app.globex, "reserve", globex_lot.id)
        .await
        .unwrap();
    act(&app, &app.acme, "hold", lot.id).await.unwrap();
    let event = next_event(&mut stream).await;
    assert_eq!(
        (
            event.lot_id,
            event.from_status.as_str(),
            event.to_status.as_str()
        ),
        (lot.id, "available", "hold")
    );
    assert_eq!(event.price, "700000.00");
    assert_eq!(
        event.sequence, 1,
        "the other tenant's change is not counted"
    );
    act(&app, &app.acme, "reserve", lot.id).await.unwrap();
    let event = next_event(&mut stream).await;
    assert_eq!(
        (event.lot_id, event.to_status.as_str()),
        (lot.id, "reserved")
    );
    assert_eq!(event.sequence, 2);

    // Watching another tenant's project is NOT_FOUND.
    expect_code(
        watcher
            .watch_lot_availability(app.globex.req(pb::WatchLotAvailabilityRequest {
                project_id: project.id,
            }))
            .await,
        Code::NotFound,
    );
    replica.stop().await.unwrap();
}

#[tokio::test]
async fn creating_a_lot_is_idempotent_by_request_id_and_lot_numbers_are_unique_per_stage() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (project, stage) = app.project_with_stage(who, "idem").await;
    let request = || pb::CreateLotRequest {
        lot: Some(pb::Lot {
            stage_id: stage.id,
            lot_number: "12".into(),
            price: "10.00".into(),
            ..Default::default()
        }),
        request_id: "6f1c1f2e-2a8e-4d1b-9d7a-2b5f7b0e9a11".into(),
    };
    let first = app
        .lots()
        .create_lot(who.req(request()))
        .await
        .unwrap()
        .into_inner();
    let again = app
        .lots()
        .create_lot(who.req(request()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.id, again.id);
    assert_eq!(app.get_project(who, project.id).await.lot_count, 1);
    let mut duplicate = request();
    duplicate.request_id = String::new();
    expect_code(
        app.lots().create_lot(who.req(duplicate)).await,
        Code::AlreadyExists,
    );
    let status = expect_code(
        app.lots()
            .create_lot(who.req(pb::CreateLotRequest {
                lot: Some(pb::Lot {
                    stage_id: stage.id,
                    lot_number: String::new(),
                    price: "1.234".into(),
                    bedrooms: Some(-1),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await,
        Code::InvalidArgument,
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["lot.bedrooms", "lot.lot_number", "lot.price"]);
}

/// How many status changes lot `id` has on record.
async fn status_change_count(app: &TestApp, who: &User, id: i64) -> i32 {
    app.lots()
        .list_lot_status_changes(who.req(pb::ListLotStatusChangesRequest {
            lot_id: id,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .total_size
}

/// Where each lifecycle method may be called from: the status a fresh lot is brought to
/// first.
const ACCEPTS: [(&str, &str); 8] = [
    ("hold", "available"),
    ("release", "hold"),
    ("reserve", "available"),
    ("exchange", "reserved"),
    ("unconditional", "exchanged"),
    ("settle", "unconditional"),
    ("withdraw", "available"),
    ("revert", "hold"),
];

#[tokio::test]
async fn every_lifecycle_method_replays_its_first_result_for_a_retried_request_id() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (_, stage) = app.project_with_stage(who, "retries").await;
    for (n, (action, from)) in ACCEPTS.into_iter().enumerate() {
        let lot = app.lot(who, &stage, &format!("R{n}"), "500000.00").await;
        for step in path_to(from) {
            act(&app, who, step, lot.id).await.expect("path step");
        }
        let before = status_change_count(&app, who, lot.id).await;
        let id = uuid::Uuid::new_v4().to_string();
        let why = format!("test: {action}");
        let first = act_with(&app, who, action, lot.id, &id, &why)
            .await
            .unwrap_or_else(|e| panic!("{action} from {from}: {e:?}"));
        // The retry finds the lot already moved on: without the request id it would be
        // refused (or, for a revert, move the lot a second step back).
        let again = act_with(&app, who, action, lot.id, &id, &why)
            .await
            .unwrap_or_else(|e| panic!("{action} retried: {e:?}"));
        assert_eq!(again, first, "{action}: the retry returns the first result");
        assert_eq!(
            status_change_count(&app, who, lot.id).await,
            before + 1,
            "{action}: one status change, however many retries"
        );
        assert_eq!(app.get_lot(who, lot.id).await.etag, first.etag, "{action}");

        // The same id with a different request is refused, whatever the lot's state.
        let status = expect_code(
            act_with(&app, who, action, lot.id, &id, "another reason").await,
            Code::InvalidArgument,
        );
        assert_eq!(reason(&status), "REQUEST_ID_REUSED", "{action}");
        assert_eq!(violated_fields(&status), ["request_id"], "{action}");
        // A malformed id is refused before anything is read.
        let status = expect_code(
            act_with(&app, who, action, lot.id, "not-a-uuid", &why).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["request_id"], "{action}");
        assert_eq!(
            status_change_count(&app, who, lot.id).await,
            before + 1,
            "{action}: refused calls change nothing"
        );
    }
}

#[tokio::test]
async fn a_reservation_retried_after_a_timeout_gets_its_own_success_and_a_rival_is_refused() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let rival = app.user(1, 77, crate::helpers::WRITER);
    let (_, stage) = app.project_with_stage(who, "timeout").await;
    let lot = app.lot(who, &stage, "1", "650000.00").await;
    let id = uuid::Uuid::new_v4().to_string();
    // The reservation commits but its answer is lost on the way back.
    let first = act_with(&app, who, "reserve", lot.id, &id, "deposit paid")
        .await
        .unwrap();
    assert_eq!(first.status, "reserved");
    // A rival's reservation is refused: the lot is taken.
    let status = expect_code(
        act(&app, &rival, "reserve", lot.id).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "LOT_RESERVED");
    // Meanwhile the sale moves on.
    act(&app, who, "exchange", lot.id).await.unwrap();
    // The retry tells the client its own reservation succeeded: the lot as it was
    // reserved, not LOT_RESERVED or LOT_EXCHANGED.
    let retried = act_with(&app, who, "reserve", lot.id, &id, "deposit paid")
        .await
        .expect("the retry replays the first success");
    assert_eq!(retried, first);
    assert_eq!(retried.status, "reserved");
    assert_eq!(app.get_lot(who, lot.id).await.status, "exchanged");
    // created, reserved, exchanged: the retry wrote nothing.
    assert_eq!(status_change_count(&app, who, lot.id).await, 3);

    // Request ids are the caller's tenant's: the same id from another tenant is a new
    // request (here refused: that tenant has no such lot).
    expect_code(
        act_with(&app, &app.globex, "reserve", lot.id, &id, "deposit paid").await,
        Code::NotFound,
    );
    // And each method's own: the same id on another method is a new request.
    let other = app.lot(who, &stage, "2", "660000.00").await;
    let held = act_with(&app, who, "hold", other.id, &id, "deposit paid")
        .await
        .unwrap();
    assert_eq!(held.status, "hold");
}

#[tokio::test]
async fn a_price_change_retried_with_its_request_id_is_recorded_once() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (_, stage) = app.project_with_stage(who, "repricing").await;
    let lot = app.lot(who, &stage, "1", "500000.00").await;
    let id = uuid::Uuid::new_v4().to_string();
    let request = |price: &str| pb::SetLotPriceRequest {
        id: lot.id,
        price: price.into(),
        reason: "market".into(),
        request_id: id.clone(),
        ..Default::default()
    };
    let set = |r: pb::SetLotPriceRequest| {
        let mut lots = app.lots();
        async move { lots.set_lot_price(who.req(r)).await }
    };
    let prices = || async {
        app.lots()
            .list_lot_prices(who.req(pb::ListLotPricesRequest {
                lot_id: lot.id,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner()
    };
    let first = set(request("520000.00")).await.unwrap().into_inner();
    assert_eq!(first.price, "520000.00");
    // Someone else changes the price again; the retry still returns the first result
    // and does not put 520,000 back.
    set(pb::SetLotPriceRequest {
        request_id: String::new(),
        ..request("530000.00")
    })
    .await
    .unwrap();
    let again = set(request("520000.00")).await.unwrap().into_inner();
    assert_eq!(again, first);
    assert_eq!(app.get_lot(who, lot.id).await.price, "530000.00");
    let history = prices().await;
    let listed: Vec<&str> = history
        .lot_prices
        .iter()
        .map(|p| p.price.as_str())
        .collect();
    assert_eq!(listed, ["530000.00", "520000.00", "500000.00"]);

    let status = expect_code(set(request("540000.00")).await, Code::InvalidArgument);
    assert_eq!(reason(&status), "REQUEST_ID_REUSED");
    assert_eq!(violated_fields(&status), ["request_id"]);
    let status = expect_code(
        set(pb::SetLotPriceRequest {
            request_id: "42".into(),
            ..request("540000.00")
        })
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["request_id"]);
    assert_eq!(prices().await.total_size, 3);
}

#[tokio::test]
async fn a_lots_status_is_output_only_and_changes_only_through_the_lifecycle() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (_, stage) = app.project_with_stage(who, "output-only").await;
    // A status sent with CreateLot is ignored: a new lot is available.
    let lot = app
        .lots()
        .create_lot(who.req(pb::CreateLotRequest {
            lot: Some(pb::Lot {
                stage_id: stage.id,
                lot_number: "1".into(),
                status: "settled".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lot.status, "available");
    // Named in an update mask it is refused.
    let status = expect_code(
        app.lots()
            .update_lot(who.req(pb::UpdateLotRequest {
                lot: Some(pb::Lot {
                    id: lot.id,
                    status: "settled".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["status".into()],
                }),
            }))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["update_mask"]);
    // Sent without a mask it is ignored while the other fields change.
    let updated = app
        .lots()
        .update_lot(who.req(pb::UpdateLotRequest {
            lot: Some(pb::Lot {
                id: lot.id,
                status: "settled".into(),
                sale_status: "Display home".into(),
                ..Default::default()
            }),
            update_mask: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.status.as_str(), updated.sale_status.as_str()),
        ("available", "Display home")
    );
    assert_eq!(status_change_count(&app, who, lot.id).await, 1);
}

#[tokio::test]
async fn each_watch_stream_numbers_its_events_from_one_without_gaps() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let (project, stage) = app.project_with_stage(who, "numbered").await;
    let (_, elsewhere) = app.project_with_stage(who, "elsewhere").await;
    let lot = app.lot(who, &stage, "1", "500000.00").await;
    let outside = app.lot(who, &elsewhere, "1", "500000.00").await;
    let watch = |project_id| {
        let mut lots = app.lots();
        async move {
            lots.watch_lot_availability(who.req(pb::WatchLotAvailabilityRequest { project_id }))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let mut this_project = watch(project.id).await;
    let mut every_project = watch(0).await;
    let steps = ["hold", "release", "reserve", "exchange", "revert", "revert"];
    for (i, step) in steps.into_iter().enumerate() {
        // A change of another project's lot is not this project's stream's to count.
        if i == 2 {
            act(&app, who, "withdraw", outside.id).await.unwrap();
        }
        act(&app, who, step, lot.id).await.unwrap();
    }
    let mut seen = Vec::new();
    for _ in steps {
        let event = next_event(&mut this_project).await;
        seen.push((event.sequence, event.to_status));
    }
    assert_eq!(
        seen,
        [
            (1, "hold".to_owned()),
            (2, "available".to_owned()),
            (3, "reserved".to_owned()),
            (4, "exchanged".to_owned()),
            (5, "reserved".to_owned()),
            (6, "available".to_owned()),
        ]
    );
    let mut all = Vec::new();
    for _ in 0..=steps.len() {
        all.push(next_event(&mut every_project).await.sequence);
    }
    assert_eq!(all, (1..=7).collect::<Vec<i64>>());
    // A new stream starts again at 1.
    let mut fresh = watch(project.id).await;
    act(&app, who, "hold", lot.id).await.unwrap();
    assert_eq!(next_event(&mut fresh).await.sequence, 1);
    assert_eq!(next_event(&mut this_project).await.sequence, 7);
}

#[tokio::test]
async fn a_watcher_that_falls_behind_is_told_so_after_the_events_it_was_sent() {
    let app = TestApp::spawn().await;
    let mut stream = app
        .lots()
        .watch_lot_availability(app.acme.req(pb::WatchLotAvailabilityRequest::default()))
        .await
        .unwrap()
        .into_inner();
    // Far more committed changes than the server buffers for a stream, or than the
    // connection's flow-control window holds, while the client reads nothing.
    let pool = sqlx::PgPool::connect(&app.db.app_url(fusion_property::SCHEMA))
        .await
        .unwrap();
    sqlx::query(
        "SELECT pg_notify($1, json_build_object(
             'tenant_id', 1, 'lot_id', n, 'project_id', 1, 'stage_id', 1,
             'lot_number', n::text, 'from_status', 'available', 'to_status', 'hold',
             'price', NULL, 'change_time', '2026-01-01T00:00:00Z')::text)
         FROM generate_series(1, 60000) AS n",
    )
    .bind(fusion_property::events::CHANNEL)
    .execute(&pool)
    .await
    .unwrap();
    // Let the listener relay them.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut last = 0;
    let status = loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("the stream ends, it does not hang")
        {
            Some(Ok(event)) => {
                assert_eq!(event.sequence, last + 1, "no gap before the end");
                last = event.sequence;
            }
            Some(Err(status)) => break status,
            None => panic!("the stream ended without saying why after {last} events"),
        }
    };
    assert!(
        last < 60000,
        "the client fell behind, so it cannot have seen them all"
    );
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(reason(&status), "WATCH_LAGGED");
    assert!(stream.next().await.is_none(), "nothing follows the error");
}

#[tokio::test]
async fn every_amount_carries_its_projects_currency_which_is_set_once() {
    let app = TestApp::spawn().await;
    let who = &app.acme;
    let create = |code: &str| {
        let mut projects = app.projects();
        let project = pb::Project {
            name: format!("Priced in {code}"),
            slug: format!("priced-{}", code.to_lowercase()),
            status: "selling".into(),
            currency_code: code.into(),
            ..Default::default()
        };
        async move {
            projects
                .create_project(who.req(pb::CreateProjectRequest {
                    project: Some(project),
                    request_id: String::new(),
                }))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    // Unnamed: Australian dollars.
    let (aud, _) = app.project_with_stage(who, "default-currency").await;
    assert_eq!(aud.currency_code, "AUD");
    let nzd = create("NZD").await.unwrap();
    assert_eq!(nzd.currency_code, "NZD");
    for bad in ["XYZ", "nzd", "NZ"] {
        let status = expect_code(create(bad).await, Code::InvalidArgument);
        assert_eq!(violated_fields(&status), ["project.currency_code"], "{bad}");
    }

    // A lot, its price history and its live events are in its project's currency.
    let stage = app
        .stages()
        .create_stage(who.req(pb::CreateStageRequest {
            stage: Some(pb::Stage {
                project_id: nzd.id,
                name: "Stage 1".into(),
                status: "selling".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    let mut stream = app
        .lots()
        .watch_lot_availability(who.req(pb::WatchLotAvailabilityRequest { project_id: nzd.id }))
        .await
        .unwrap()
        .into_inner();
    let lot = app.lot(who, &stage, "1", "800000.00").await;
    assert_eq!(lot.currency_code, "NZD");
    assert_eq!(next_event(&mut stream).await.currency_code, "NZD");
    let reserved = act(&app, who, "reserve", lot.id).await.unwrap();
    assert_eq!(reserved.currency_code, "NZD");
    let prices = app
        .lots()
        .list_lot_prices(who.req(pb::ListLotPricesRequest {
            lot_id: lot.id,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(prices.lot_prices.len(), 1);
    assert_eq!(prices.lot_prices[0].currency_code, "NZD");

    // The currency never changes: not by a mask, not by a whole project sent back.
    let update = |project: pb::Project, paths: &[&str]| {
        let mut projects = app.projects();
        let update_mask = (!paths.is_empty()).then(|| prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        });
        async move {
            projects
                .update_project(who.req(pb::UpdateProjectRequest {
                    project: Some(project),
                    update_mask,
                }))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let status = expect_code(
        update(
            pb::Project {
                id: nzd.id,
                currency_code: "AUD".into(),
                ..Default::default()
            },
            &["currency_code"],
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["update_mask"]);
    let current = app.get_project(who, nzd.id).await;
    let status = expect_code(
        update(
            pb::Project {
                currency_code: "AUD".into(),
                name: "Renamed".into(),
                ..current.clone()
            },
            &[],
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["project.currency_code"]);
    // Sent back unchanged it is accepted.
    let renamed = update(
        pb::Project {
            name: "Renamed".into(),
            ..current
        },
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.currency_code.as_str()),
        ("Renamed", "NZD")
    );
}
