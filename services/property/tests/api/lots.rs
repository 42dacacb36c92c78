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
    let mut lots = app.lots();
    let reason = format!("test: {action}");
    let result = match action {
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
                deposit_amount: "5000.00".into(),
                reason,
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
        "settle" => {
            lots.settle_lot(who.req(pb::SettleLotRequest {
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
    act(&app, &app.acme, "reserve", lot.id).await.unwrap();
    let event = next_event(&mut stream).await;
    assert_eq!(
        (event.lot_id, event.to_status.as_str()),
        (lot.id, "reserved")
    );

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
