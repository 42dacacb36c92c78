//! Deals: the standard methods with exact money, dates, tags and custom fields; the lot
//! checked with property and the assignee with identity, as the caller; the lead and
//! contact as live rows of the tenant; moving, winning and losing through the tenant's
//! stages (one close wins a race); isolation and permissions.

use chrono::Utc;
use futures::future::join_all;
use tonic::Code;

use fusion_proto::crm::v1 as pb;
use fusion_proto::google::r#type::Date;
use fusion_testkit::reason;

use crate::calls::{lose_deal, win_deal};
use crate::helpers::{
    TestApp, User, admin_get, assert_invalid, expect_code, select, violated_fields,
};

fn finance(value: &str) -> pb::CustomField {
    select(
        "finance",
        "Finance",
        &["pending", "approved", "declined"],
        value,
    )
}

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

fn titled(title: &str) -> pb::Deal {
    pb::Deal {
        title: title.into(),
        ..Default::default()
    }
}

async fn deal(app: &TestApp, who: &User, title: &str) -> pb::Deal {
    app.create(who, titled(title)).await.expect("deal created")
}

async fn move_to(
    app: &TestApp,
    who: &User,
    id: i64,
    stage: &str,
    probability: Option<i32>,
) -> Result<pb::Deal, tonic::Status> {
    app.send(
        who,
        pb::MoveDealStageRequest {
            id,
            stage: stage.into(),
            probability,
            etag: String::new(),
            request_id: String::new(),
        },
    )
    .await
}

/// A contact of `who`'s tenant, written straight to the table (ContactService has its
/// own tests); returns its id.
async fn contact(app: &TestApp, who: &User, last_name: &str) -> i64 {
    let db = app.crm.state().db.clone();
    let mut tx = db.begin(who.tenant_id).await.unwrap();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO crm.contacts (tenant_id, last_name) VALUES ($1, $2) RETURNING id",
    )
    .bind(who.tenant_id)
    .bind(last_name)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

/// The id of `who`'s deal stage `key`.
async fn stage_id(app: &TestApp, who: &User, key: &str) -> i64 {
    app.send(who, pb::ListDealStagesRequest::default())
        .await
        .unwrap()
        .deal_stages
        .into_iter()
        .find(|s| s.key == key)
        .unwrap_or_else(|| panic!("stage {key}"))
        .id
}

async fn add_stage(app: &TestApp, key: &str, position: i32, outcome: &str, probability: i32) {
    app.create(
        &app.acme,
        pb::DealStage {
            key: key.into(),
            label: key.into(),
            position,
            outcome: outcome.into(),
            default_probability: Some(probability),
            ..Default::default()
        },
    )
    .await
    .expect("stage created");
}

fn today() -> Option<Date> {
    let d = Utc::now().date_naive();
    Some(fusion_service::api::date_pb(d))
}

#[tokio::test]
async fn a_deal_starts_open_in_the_first_stage_with_its_default_probability() {
    let app = TestApp::spawn().await;
    let minimal = deal(&app, &app.agent, "Smith – Lot 101").await;
    assert_eq!(
        (
            minimal.status.as_str(),
            minimal.stage.as_str(),
            minimal.probability
        ),
        ("open", "property_enquiry", Some(10))
    );
    assert_eq!(
        (minimal.tenant_id, minimal.value.as_str()),
        (app.acme.tenant_id, "")
    );
    assert!(minimal.actual_close_date.is_none() && minimal.close_reason.is_empty());

    let lot = app.lot(&app.acme, "harbour").await;
    let lead = app.lead(&app.agent, "Smith").await;
    let contact = contact(&app, &app.acme, "Smith").await;
    let full = app
        .create(
            &app.agent,
            pb::Deal {
                lead_id: lead.id,
                contact_id: contact,
                lot_id: lot,
                assignee_user_id: app.agent.user_id,
                title: "  Smith – Lot 1  ".into(),
                description: "House and land".into(),
                value: "549000.00".into(),
                stage: "signed_contract".into(),
                expected_close_date: date(2026, 9, 30),
                tags: vec!["first-home".into(), "first-home".into(), "vip".into()],
                custom_fields: vec![finance("pending")],
                // Status and close fields are the server's: ignored on create.
                status: "won".into(),
                close_reason: "ignored".into(),
                actual_close_date: date(2020, 1, 1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            full.lead_id,
            full.contact_id,
            full.lot_id,
            full.assignee_user_id
        ),
        (lead.id, contact, lot, app.agent.user_id)
    );
    assert_eq!(full.title, "Smith – Lot 1");
    assert_eq!(full.value, "549000.00");
    assert_eq!(
        (full.status.as_str(), full.stage.as_str(), full.probability),
        ("open", "signed_contract", Some(50))
    );
    assert_eq!(full.expected_close_date, date(2026, 9, 30));
    assert!(full.actual_close_date.is_none() && full.close_reason.is_empty());
    assert_eq!(full.tags, ["first-home", "vip"]);
    assert_eq!(full.custom_fields, [finance("pending")]);
    assert_eq!(
        app.get::<pb::Deal>(&app.viewer, full.id).await.unwrap(),
        full
    );

    // A probability given wins over the stage's default, 0 included.
    let sure = app
        .create(
            &app.agent,
            pb::Deal {
                probability: Some(0),
                ..titled("Long shot")
            },
        )
        .await
        .unwrap();
    assert_eq!(sure.probability, Some(0));
}

#[tokio::test]
async fn a_deal_value_is_exact_to_the_cent_and_never_a_float() {
    let app = TestApp::spawn().await;
    for (sent, kept) in [
        ("1234567.89", "1234567.89"),
        ("549000", "549000.00"),
        ("0.1", "0.10"),
        ("9999999999.99", "9999999999.99"),
        ("0", "0.00"),
    ] {
        let d = app
            .create(
                &app.agent,
                pb::Deal {
                    value: sent.into(),
                    ..titled("Money")
                },
            )
            .await
            .unwrap();
        assert_eq!(d.value, kept, "{sent}");
        assert_eq!(
            app.get::<pb::Deal>(&app.agent, d.id).await.unwrap().value,
            kept
        );
    }
    for bad in [
        "1e5",
        "12.345",
        "-1.00",
        "10000000000",
        "1,000",
        "NaN",
        "0x10",
        "$5",
    ] {
        assert_invalid(
            app.create(
                &app.agent,
                pb::Deal {
                    value: bad.into(),
                    ..titled("Money")
                },
            )
            .await,
            &["deal.value"],
        );
    }

    // An update keeps the cents too, and an empty value in the mask clears it.
    let d = deal(&app, &app.agent, "Repriced").await;
    let priced = app
        .update(
            &app.agent,
            pb::Deal {
                id: d.id,
                value: "700000.05".into(),
                ..Default::default()
            },
            &["value"],
        )
        .await
        .unwrap();
    assert_eq!(priced.value, "700000.05");
    let cleared = app
        .update(
            &app.agent,
            pb::Deal {
                id: d.id,
                ..Default::default()
            },
            &["value"],
        )
        .await
        .unwrap();
    assert_eq!(cleared.value, "");
}

#[tokio::test]
async fn every_bad_field_of_a_deal_is_named() {
    let app = TestApp::spawn().await;
    assert_invalid(
        app.create(
            &app.agent,
            pb::Deal {
                title: " ".into(),
                value: "12.345".into(),
                probability: Some(101),
                lead_id: -1,
                lot_id: -5,
                stage: "Signed Contract".into(),
                expected_close_date: date(2026, 2, 30),
                tags: vec![String::new()],
                custom_fields: vec![finance("maybe")],
                ..Default::default()
            },
        )
        .await,
        &[
            "deal.custom_fields[0].value",
            "deal.expected_close_date",
            "deal.lead_id",
            "deal.lot_id",
            "deal.probability",
            "deal.stage",
            "deal.tags",
            "deal.title",
            "deal.value",
        ],
    );
    assert_invalid(
        app.create(
            &app.agent,
            pb::Deal {
                title: "x".repeat(256),
                ..Default::default()
            },
        )
        .await,
        &["deal.title"],
    );
}

#[tokio::test]
async fn a_deal_starts_only_in_a_live_open_stage_of_its_tenant() {
    let app = TestApp::spawn().await;
    deal(&app, &app.agent, "Seed").await; // the tenant's pipeline exists from here
    for stage in ["settlement_handover", "crashed", "sold_twice"] {
        assert_invalid(
            app.create(
                &app.agent,
                pb::Deal {
                    stage: stage.into(),
                    ..titled("Early")
                },
            )
            .await,
            &["deal.stage"],
        );
    }

    // A deleted stage takes no new deals; the first open stage moves with the pipeline.
    let enquiry = stage_id(&app, &app.acme, "property_enquiry").await;
    app.delete::<pb::DealStage>(&app.acme, enquiry, "")
        .await
        .unwrap();
    let status = expect_code(
        app.create(
            &app.agent,
            pb::Deal {
                stage: "property_enquiry".into(),
                ..titled("Gone")
            },
        )
        .await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("property_reserved"), "{status:?}");
    let d = deal(&app, &app.agent, "Next").await;
    assert_eq!(
        (d.stage.as_str(), d.probability),
        ("property_reserved", Some(30))
    );
}

#[tokio::test]
async fn a_deal_on_another_tenants_lot_is_invalid() {
    let app = TestApp::spawn().await;
    let ours = app.lot(&app.acme, "ours").await;
    let theirs = app.lot(&app.globex, "theirs").await;
    for lot in [theirs, 999_999] {
        let status = expect_code(
            app.create(
                &app.agent,
                pb::Deal {
                    lot_id: lot,
                    ..titled("Stray")
                },
            )
            .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["deal.lot_id"]);
    }
    let d = app
        .create(
            &app.agent,
            pb::Deal {
                lot_id: ours,
                ..titled("Ours")
            },
        )
        .await
        .unwrap();
    assert_eq!(d.lot_id, ours);
    let status = expect_code(
        app.update(
            &app.agent,
            pb::Deal {
                id: d.id,
                lot_id: theirs,
                ..Default::default()
            },
            &["lot_id"],
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["deal.lot_id"]);
    assert_eq!(
        app.get::<pb::Deal>(&app.agent, d.id).await.unwrap().lot_id,
        ours
    );
    // Globex's admin may use their own lot.
    let theirs_deal = app
        .create(
            &app.globex,
            pb::Deal {
                lot_id: theirs,
                ..titled("Theirs")
            },
        )
        .await
        .unwrap();
    assert_eq!(theirs_deal.lot_id, theirs);
}

#[tokio::test]
async fn a_deal_is_assigned_only_to_an_active_user_of_its_tenant() {
    let app = TestApp::spawn().await;
    for stranger in [app.globex.user_id, 999_999] {
        assert_invalid(
            app.create(
                &app.acme,
                pb::Deal {
                    assignee_user_id: stranger,
                    ..titled("Stray")
                },
            )
            .await,
            &["deal.assignee_user_id"],
        );
    }
    let d = deal(&app, &app.acme, "Unassigned").await;
    let assigned = app
        .update(
            &app.acme,
            pb::Deal {
                id: d.id,
                assignee_user_id: app.agent.user_id,
                ..Default::default()
            },
            &["assignee_user_id"],
        )
        .await
        .unwrap();
    assert_eq!(assigned.assignee_user_id, app.agent.user_id);
    assert_invalid(
        app.update(
            &app.acme,
            pb::Deal {
                id: d.id,
                assignee_user_id: app.globex.user_id,
                ..Default::default()
            },
            &["assignee_user_id"],
        )
        .await,
        &["deal.assignee_user_id"],
    );
    let unassigned = app
        .update(
            &app.acme,
            pb::Deal {
                id: d.id,
                ..Default::default()
            },
            &["assignee_user_id"],
        )
        .await
        .unwrap();
    assert_eq!(unassigned.assignee_user_id, 0);
}

#[tokio::test]
async fn a_deal_names_only_live_leads_and_contacts_of_its_tenant() {
    let app = TestApp::spawn().await;
    let their_lead = app.lead(&app.globex, "Theirs").await;
    let their_contact = contact(&app, &app.globex, "Theirs").await;
    assert_invalid(
        app.create(
            &app.agent,
            pb::Deal {
                lead_id: their_lead.id,
                contact_id: their_contact,
                ..titled("Stray")
            },
        )
        .await,
        &["deal.contact_id", "deal.lead_id"],
    );

    let gone = app.lead(&app.agent, "Gone").await;
    app.delete::<pb::Lead>(&app.agent, gone.id, "")
        .await
        .unwrap();
    assert_invalid(
        app.create(
            &app.agent,
            pb::Deal {
                lead_id: gone.id,
                ..titled("Late")
            },
        )
        .await,
        &["deal.lead_id"],
    );

    let d = deal(&app, &app.agent, "Linked later").await;
    let ours = contact(&app, &app.acme, "Ours").await;
    let linked = app
        .update(
            &app.agent,
            pb::Deal {
                id: d.id,
                contact_id: ours,
                ..Default::default()
            },
            &["contact_id"],
        )
        .await
        .unwrap();
    assert_eq!(linked.contact_id, ours);
    assert_invalid(
        app.update(
            &app.agent,
            pb::Deal {
                id: d.id,
                contact_id: their_contact,
                ..Default::default()
            },
            &["contact_id"],
        )
        .await,
        &["deal.contact_id"],
    );
}

#[tokio::test]
async fn updates_change_only_masked_fields_and_never_the_stage_or_output_only_fields() {
    let app = TestApp::spawn().await;
    let d = app
        .create(
            &app.agent,
            pb::Deal {
                description: "kept".into(),
                value: "500000.00".into(),
                ..titled("Smith")
            },
        )
        .await
        .unwrap();
    let changed = app
        .update(
            &app.agent,
            pb::Deal {
                id: d.id,
                title: "Smith – Lot 7".into(),
                value: "512000.50".into(),
                probability: Some(35),
                expected_close_date: date(2026, 12, 1),
                description: "not in the mask".into(),
                tags: vec!["investor".into()],
                custom_fields: vec![finance("approved")],
                etag: d.etag.clone(),
                ..Default::default()
            },
            &[
                "title",
                "value",
                "probability",
                "expected_close_date",
                "tags",
                "custom_fields",
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            changed.title.as_str(),
            changed.value.as_str(),
            changed.probability,
            changed.description.as_str()
        ),
        ("Smith – Lot 7", "512000.50", Some(35), "kept")
    );
    assert_eq!(changed.expected_close_date, date(2026, 12, 1));
    assert_eq!(changed.tags, ["investor"]);
    assert_eq!(changed.custom_fields, [finance("approved")]);
    assert_eq!(changed.stage, "property_enquiry");
    assert_ne!(changed.etag, d.etag);

    // Without a mask, the populated fields change (a stage sent along is ignored).
    let unmasked = app
        .update(
            &app.agent,
            pb::Deal {
                id: d.id,
                description: "now changed".into(),
                stage: "construction".into(),
                ..Default::default()
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            unmasked.description.as_str(),
            unmasked.title.as_str(),
            unmasked.stage.as_str()
        ),
        ("now changed", "Smith – Lot 7", "property_enquiry")
    );

    for path in [
        "stage",
        "status",
        "actual_close_date",
        "close_reason",
        "tenant_id",
        "create_time",
        "nonsense",
    ] {
        assert_invalid(
            app.update(
                &app.agent,
                pb::Deal {
                    id: d.id,
                    stage: "construction".into(),
                    status: "won".into(),
                    ..Default::default()
                },
                &[path],
            )
            .await,
            &["update_mask"],
        );
    }
    for (change, path) in [
        (
            pb::Deal {
                id: d.id,
                ..Default::default()
            },
            "title",
        ),
        (
            pb::Deal {
                id: d.id,
                probability: Some(-1),
                ..Default::default()
            },
            "probability",
        ),
        (
            pb::Deal {
                id: d.id,
                expected_close_date: date(2026, 13, 1),
                ..Default::default()
            },
            "expected_close_date",
        ),
    ] {
        assert_invalid(
            app.update(&app.agent, change, &[path]).await,
            &[format!("deal.{path}")],
        );
    }
    let after = app.get::<pb::Deal>(&app.agent, d.id).await.unwrap();
    assert_eq!(after, unmasked, "refused updates changed nothing");
}

#[tokio::test]
async fn moving_a_deal_goes_only_to_another_live_open_stage() {
    let app = TestApp::spawn().await;
    let d = deal(&app, &app.agent, "Mover").await;
    let moved = app
        .send(
            &app.agent,
            pb::MoveDealStageRequest {
                id: d.id,
                stage: "signed_contract".into(),
                probability: None,
                etag: d.etag.clone(),
                request_id: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            moved.status.as_str(),
            moved.stage.as_str(),
            moved.probability
        ),
        ("open", "signed_contract", Some(50))
    );
    assert_ne!(moved.etag, d.etag);
    let guessed = move_to(&app, &app.agent, d.id, "unconditional", Some(65))
        .await
        .unwrap();
    assert_eq!(
        (guessed.stage.as_str(), guessed.probability),
        ("unconditional", Some(65))
    );

    // A stale etag, a closing stage, an unknown or empty stage, a bad probability.
    let stale = expect_code(
        app.send(
            &app.agent,
            pb::MoveDealStageRequest {
                id: d.id,
                stage: "construction".into(),
                probability: None,
                etag: d.etag.clone(),
                request_id: String::new(),
            },
        )
        .await,
        Code::Aborted,
    );
    assert_eq!(reason(&stale), "ETAG_MISMATCH");
    for (stage, probability, field) in [
        ("settlement_handover", None, "stage"),
        ("crashed", None, "stage"),
        ("sold_twice", None, "stage"),
        ("", None, "stage"),
        ("Construction", None, "stage"),
        ("construction", Some(101), "probability"),
    ] {
        assert_invalid(
            move_to(&app, &app.agent, d.id, stage, probability).await,
            &[field],
        );
    }
    let status = expect_code(
        move_to(&app, &app.agent, d.id, "settlement_handover", None).await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("WinDeal"), "{status:?}");

    // Naming the stage the open deal is already in is refused, not a silent no-op.
    let same = expect_code(
        move_to(&app, &app.agent, d.id, "unconditional", None).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&same), "SAME_STAGE");
    assert_eq!(
        app.get::<pb::Deal>(&app.agent, d.id).await.unwrap(),
        guessed
    );
}

#[tokio::test]
async fn winning_a_deal_closes_it_in_the_won_stage_today_and_announces_it() {
    let app = TestApp::spawn().await;
    let lot = app.lot(&app.acme, "sold").await;
    let d = app
        .create(
            &app.agent,
            pb::Deal {
                lot_id: lot,
                value: "549000.00".into(),
                ..titled("Smith – Lot 1")
            },
        )
        .await
        .unwrap();
    let before = today();
    let won = app
        .send(
            &app.agent,
            pb::WinDealRequest {
                id: d.id,
                reason: "loved the block".into(),
                etag: d.etag.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let after = today();
    assert_eq!(
        (
            won.status.as_str(),
            won.stage.as_str(),
            won.probability,
            won.close_reason.as_str()
        ),
        ("won", "settlement_handover", Some(100), "loved the block")
    );
    assert!(won.actual_close_date == before || won.actual_close_date == after);
    assert_eq!(app.get::<pb::Deal>(&app.viewer, d.id).await.unwrap(), won);

    // Property learns of it from the outbox, written in the same transaction.
    let db = app.crm.state().db.clone();
    let mut tx = db.begin(app.acme.tenant_id).await.unwrap();
    let events: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT event_type, payload FROM crm.outbox_events
          WHERE aggregate_type = 'deal' AND aggregate_id = $1 AND sent_at IS NULL",
    )
    .bind(d.id)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "crm.deal.won");
    let payload = <pb::DealWon as prost::Message>::decode(events[0].1.as_slice()).unwrap();
    assert_eq!(
        (payload.deal_id, payload.lot_id, payload.value.as_str()),
        (d.id, lot, "549000.00")
    );
    assert_eq!(payload.close_date, won.actual_close_date);
    assert_ne!(payload.acting_user_id, 0, "the user who won it");

    // A won deal cannot be won or lost again.
    let again = expect_code(
        app.send(&app.agent, win_deal(d.id)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&again), "DEAL_CLOSED");
    assert!(again.message().contains("won"), "{again:?}");
    let lost = expect_code(
        app.send(&app.agent, lose_deal(d.id, "changed mind")).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&lost), "DEAL_CLOSED");

    // A named won stage and a close date are used as given.
    add_stage(&app, "sold_off_plan", 75, "won", 100).await;
    let other = deal(&app, &app.agent, "Off the plan").await;
    let won = app
        .send(
            &app.agent,
            pb::WinDealRequest {
                id: other.id,
                stage: "sold_off_plan".into(),
                close_date: date(2026, 3, 31),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            won.stage.as_str(),
            won.actual_close_date,
            won.close_reason.as_str()
        ),
        ("sold_off_plan", date(2026, 3, 31), "")
    );
}

#[tokio::test]
async fn winning_needs_a_won_stage_and_a_real_date() {
    let app = TestApp::spawn().await;
    let d = deal(&app, &app.agent, "Pending").await;
    for (request, field) in [
        (
            pb::WinDealRequest {
                id: d.id,
                stage: "crashed".into(),
                ..Default::default()
            },
            "stage",
        ),
        (
            pb::WinDealRequest {
                id: d.id,
                stage: "construction".into(),
                ..Default::default()
            },
            "stage",
        ),
        (
            pb::WinDealRequest {
                id: d.id,
                stage: "nowhere".into(),
                ..Default::default()
            },
            "stage",
        ),
        (
            pb::WinDealRequest {
                id: d.id,
                close_date: date(2026, 2, 29),
                ..Default::default()
            },
            "close_date",
        ),
        (win_deal(0), "id"),
    ] {
        let status = expect_code(app.send(&app.agent, request).await, Code::InvalidArgument);
        assert_eq!(violated_fields(&status), [field]);
    }
    let stale = expect_code(
        app.send(
            &app.agent,
            pb::WinDealRequest {
                id: d.id,
                etag: "\"99\"".into(),
                ..Default::default()
            },
        )
        .await,
        Code::Aborted,
    );
    assert_eq!(reason(&stale), "ETAG_MISMATCH");

    // With its only won stage deleted, the tenant cannot win deals.
    let won_stage = stage_id(&app, &app.acme, "settlement_handover").await;
    app.delete::<pb::DealStage>(&app.acme, won_stage, "")
        .await
        .unwrap();
    let none = expect_code(
        app.send(&app.agent, win_deal(d.id)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&none), "NO_WON_STAGE");
    assert_eq!(app.get::<pb::Deal>(&app.agent, d.id).await.unwrap(), d);
}

#[tokio::test]
async fn losing_a_deal_keeps_the_reason_and_closes_it_in_a_lost_stage() {
    let app = TestApp::spawn().await;
    let d = deal(&app, &app.agent, "Doomed").await;
    for (request, fields) in [
        (lose_deal(d.id, "  "), vec!["reason"]),
        (
            pb::LoseDealRequest {
                id: d.id,
                reason: String::new(),
                stage: "Crashed!".into(),
                close_date: date(2026, 4, 31),
                ..Default::default()
            },
            vec!["close_date", "reason", "stage"],
        ),
        (
            pb::LoseDealRequest {
                id: d.id,
                reason: "finance declined".into(),
                stage: "settlement_handover".into(),
                ..Default::default()
            },
            vec!["stage"],
        ),
    ] {
        let status = expect_code(app.send(&app.agent, request).await, Code::InvalidArgument);
        let mut got = violated_fields(&status);
        got.sort();
        assert_eq!(got, fields);
    }
    let lost = app
        .send(
            &app.agent,
            pb::LoseDealRequest {
                id: d.id,
                reason: "finance declined".into(),
                close_date: date(2026, 5, 4),
                etag: d.etag.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            lost.status.as_str(),
            lost.stage.as_str(),
            lost.probability,
            lost.close_reason.as_str(),
            lost.actual_close_date
        ),
        (
            "lost",
            "crashed",
            Some(0),
            "finance declined",
            date(2026, 5, 4)
        )
    );
    let again = expect_code(
        app.send(&app.agent, lose_deal(d.id, "twice")).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&again), "DEAL_CLOSED");
    assert!(again.message().contains("lost"), "{again:?}");

    // A named lost stage is used; each loss is announced once (tests/api/events.rs
    // reads the payload).
    add_stage(&app, "withdrawn", 95, "lost", 0).await;
    let other = deal(&app, &app.agent, "Withdrawn").await;
    let withdrawn = app
        .send(
            &app.agent,
            pb::LoseDealRequest {
                id: other.id,
                reason: "buyer withdrew".into(),
                stage: "withdrawn".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(withdrawn.stage, "withdrawn");
    assert_eq!(withdrawn.actual_close_date, today());
    let db = app.crm.state().db.clone();
    let mut tx = db.begin(app.acme.tenant_id).await.unwrap();
    let events: Vec<(String, i64)> =
        sqlx::query_as("SELECT event_type, aggregate_id FROM crm.outbox_events ORDER BY id")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        events,
        [
            ("crm.deal.lost".to_owned(), d.id),
            ("crm.deal.lost".to_owned(), other.id)
        ]
    );
}

#[tokio::test]
async fn moving_a_closed_deal_reopens_it() {
    let app = TestApp::spawn().await;
    let d = deal(&app, &app.agent, "Second chance").await;
    app.send(&app.agent, lose_deal(d.id, "finance declined"))
        .await
        .unwrap();
    let reopened = move_to(&app, &app.agent, d.id, "property_reserved", None)
        .await
        .unwrap();
    assert_eq!(
        (
            reopened.status.as_str(),
            reopened.stage.as_str(),
            reopened.probability,
            reopened.close_reason.as_str()
        ),
        ("open", "property_reserved", Some(30), "")
    );
    assert!(reopened.actual_close_date.is_none());

    // Reopened, it can be won; won, it can be reopened straight into any open stage.
    let won = app
        .send(
            &app.agent,
            pb::WinDealRequest {
                id: d.id,
                reason: "refinanced".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(won.status, "won");
    let back = move_to(&app, &app.agent, d.id, "property_enquiry", Some(20))
        .await
        .unwrap();
    assert_eq!(
        (back.status.as_str(), back.stage.as_str(), back.probability),
        ("open", "property_enquiry", Some(20))
    );
    assert!(back.actual_close_date.is_none() && back.close_reason.is_empty());
}

#[tokio::test]
async fn of_concurrent_wins_and_losses_only_one_closes_the_deal() {
    let app = TestApp::spawn().await;
    for round in 0..3 {
        let d = deal(&app, &app.agent, &format!("Contested {round}")).await;
        let calls = (0..8).map(|i| {
            let app = &app;
            let id = d.id;
            async move {
                if i % 2 == 0 {
                    app.send(
                        &app.agent,
                        pb::WinDealRequest {
                            id,
                            reason: format!("win {i}"),
                            ..Default::default()
                        },
                    )
                    .await
                } else {
                    app.send(
                        &app.acme,
                        pb::LoseDealRequest {
                            id,
                            reason: format!("lose {i}"),
                            ..Default::default()
                        },
                    )
                    .await
                }
            }
        });
        let results = join_all(calls).await;
        let winners: Vec<&pb::Deal> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for refused in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
            assert_eq!(reason(refused), "DEAL_CLOSED");
        }
        let closed = app.get::<pb::Deal>(&app.agent, d.id).await.unwrap();
        assert_eq!(&closed, winners[0]);
        assert_eq!(
            closed.probability,
            Some(if closed.status == "won" { 100 } else { 0 })
        );
    }
}

#[tokio::test]
async fn deals_filter_on_money_stages_dates_tags_and_custom_fields_and_page_in_order() {
    let app = TestApp::spawn().await;
    let lot = app.lot(&app.acme, "filtered").await;
    for (title, value, stage, close, tags, fin) in [
        (
            "Adams",
            "450000.00",
            "construction",
            (2026, 6, 1),
            vec!["vip"],
            "approved",
        ),
        (
            "Brown",
            "620000.50",
            "property_enquiry",
            (2026, 8, 15),
            vec!["vip", "investor"],
            "pending",
        ),
        (
            "Chen",
            "620000.49",
            "signed_contract",
            (2026, 7, 1),
            vec![],
            "approved",
        ),
        (
            "Davis",
            "",
            "property_enquiry",
            (2027, 1, 10),
            vec!["investor"],
            "declined",
        ),
    ] {
        app.create(
            &app.agent,
            pb::Deal {
                value: value.into(),
                stage: stage.into(),
                expected_close_date: date(close.0, close.1, close.2),
                tags: tags.into_iter().map(String::from).collect(),
                custom_fields: vec![finance(fin)],
                lot_id: if title == "Chen" { lot } else { 0 },
                ..titled(title)
            },
        )
        .await
        .unwrap();
    }
    let titles = |filter: &str, order_by: &str| {
        let mut deals = app.deals();
        let req = app.viewer.req(pb::ListDealsRequest {
            filter: filter.into(),
            order_by: order_by.into(),
            ..Default::default()
        });
        async move {
            deals
                .list_deals(req)
                .await
                .unwrap()
                .into_inner()
                .deals
                .into_iter()
                .map(|d| d.title)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(titles("value > 620000.49", "").await, ["Brown"]);
    assert_eq!(
        titles("value >= 620000.49", "value desc").await,
        ["Brown", "Chen"]
    );
    assert_eq!(
        titles(r#"stage = "property_enquiry""#, "title").await,
        ["Brown", "Davis"]
    );
    assert_eq!(
        titles(
            r#"expected_close_date < "2026-08-01""#,
            "expected_close_date"
        )
        .await,
        ["Adams", "Chen"]
    );
    assert_eq!(
        titles(r#"tags:"vip" AND custom_fields.finance = "approved""#, "").await,
        ["Adams"]
    );
    assert_eq!(titles(&format!("lot_id = {lot}"), "").await, ["Chen"]);
    assert_eq!(titles(r#"title:"av""#, "").await, ["Davis"]);
    assert_eq!(
        titles(
            r#"status = "open" AND probability >= 50"#,
            "probability desc"
        )
        .await,
        ["Adams", "Chen"]
    );
    // Values order NULLs last either way.
    assert_eq!(
        titles("", "value").await,
        ["Adams", "Chen", "Brown", "Davis"]
    );
    // The stage orders by its pipeline position, not its key.
    assert_eq!(
        titles("", "stage, title").await,
        ["Brown", "Davis", "Chen", "Adams"]
    );
    assert_eq!(
        titles("", "stage desc, title desc").await,
        ["Adams", "Chen", "Davis", "Brown"]
    );

    // Pages by stage visit every deal once, in order.
    let mut deals = app.deals();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = deals
            .list_deals(app.viewer.req(pb::ListDealsRequest {
                page_size: 1,
                order_by: "stage".into(),
                page_token: token.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total_size, 4);
        seen.extend(page.deals.into_iter().map(|d| d.stage));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen,
        [
            "property_enquiry",
            "property_enquiry",
            "signed_contract",
            "construction"
        ]
    );

    let first = deals
        .list_deals(app.viewer.req(pb::ListDealsRequest {
            page_size: 3,
            order_by: "title".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((first.deals.len(), first.total_size), (3, 4));
    let second = deals
        .list_deals(app.viewer.req(pb::ListDealsRequest {
            page_size: 3,
            order_by: "title".into(),
            page_token: first.next_page_token.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.deals.len(), 1);
    assert_eq!(second.deals[0].title, "Davis");
    let status = expect_code(
        deals
            .list_deals(app.viewer.req(pb::ListDealsRequest {
                page_size: 3,
                order_by: "value".into(),
                page_token: first.next_page_token,
                ..Default::default()
            }))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["page_token"]);
    for (filter, order_by, field) in [
        ("description = \"x\"", "", "filter"),
        ("value = \"lots\"", "", "filter"),
        ("stage#position = 1", "", "filter"),
        ("", "description", "order_by"),
        ("", "stage#position", "order_by"),
        ("", "stage sideways", "order_by"),
    ] {
        assert_invalid(
            deals
                .list_deals(app.viewer.req(pb::ListDealsRequest {
                    filter: filter.into(),
                    order_by: order_by.into(),
                    ..Default::default()
                }))
                .await,
            &[field],
        );
    }
}

/// Move, Win and Lose are the deal's own methods: the conformance suite covers the
/// standard ones.
#[tokio::test]
async fn moving_winning_and_losing_are_bound_to_the_tenant_and_need_the_write_permission() {
    let app = TestApp::spawn().await;
    let d = deal(&app, &app.agent, "Agent's").await;
    let deleted = deal(&app, &app.agent, "Deleted").await;
    app.delete::<pb::Deal>(&app.agent, deleted.id, "")
        .await
        .unwrap();
    for (who, id, code) in [
        (&app.globex, d.id, Code::NotFound),
        (&app.viewer, d.id, Code::PermissionDenied),
        (&app.agent, deleted.id, Code::NotFound),
    ] {
        expect_code(move_to(&app, who, id, "signed_contract", None).await, code);
        let won = pb::WinDealRequest {
            id,
            ..Default::default()
        };
        expect_code(app.send(who, won).await, code);
        let lost = pb::LoseDealRequest {
            id,
            reason: "no".into(),
            ..Default::default()
        };
        expect_code(app.send(who, lost).await, code);
    }
    assert_eq!(app.get::<pb::Deal>(&app.agent, d.id).await.unwrap(), d);
}

/// The date in `zone` now, as the wire carries it.
fn today_in(zone: chrono_tz::Tz) -> Option<Date> {
    Some(fusion_service::api::date_pb(
        Utc::now().with_timezone(&zone).date_naive(),
    ))
}

#[tokio::test]
async fn a_default_close_date_is_today_in_the_tenants_time_zone() {
    let app = TestApp::spawn().await;
    let keys = fusion_testkit::TestKeys::new();
    let (_replica, channel) = app.replica_trusting(&keys).await;
    let mut deals = fusion_proto::crm::v1::deal_service_client::DealServiceClient::new(channel);
    let perms = ["crm.deals.read", "crm.deals.write"];
    let (acme, user) = (app.acme.tenant_id, app.acme.user_id);
    // UTC+14 and UTC−11: 25 hours apart, so never the same date.
    let mut closed = Vec::new();
    for zone in [
        chrono_tz::Pacific::Kiritimati,
        chrono_tz::Pacific::Pago_Pago,
    ] {
        let who = User {
            tenant_id: acme,
            user_id: user,
            token: keys.mint_in_zone(acme, user, &perms, zone.name()),
        };
        for lose in [false, true] {
            let d = deals
                .create_deal(who.req(pb::CreateDealRequest {
                    deal: Some(titled(&format!("{} {lose}", zone.name()))),
                    request_id: String::new(),
                }))
                .await
                .unwrap()
                .into_inner();
            let before = today_in(zone);
            let done = if lose {
                deals
                    .lose_deal(who.req(lose_deal(d.id, "finance declined")))
                    .await
            } else {
                deals.win_deal(who.req(win_deal(d.id))).await
            }
            .unwrap()
            .into_inner();
            let after = today_in(zone);
            assert!(
                done.actual_close_date == before || done.actual_close_date == after,
                "{zone}: {:?} is not {before:?}",
                done.actual_close_date
            );
            closed.push(done.actual_close_date);
        }
    }
    assert_ne!(
        closed[0], closed[2],
        "Kiritimati's today is not Pago Pago's"
    );
    assert_eq!((closed[0], closed[2]), (closed[1], closed[3]));
}

#[tokio::test]
async fn a_deal_carries_the_iso_4217_currency_of_its_value() {
    let app = TestApp::spawn().await;
    // Unset on create means AUD; a given code is kept and filterable.
    let aud = app
        .create(
            &app.agent,
            pb::Deal {
                value: "549000.00".into(),
                ..titled("Default currency")
            },
        )
        .await
        .unwrap();
    assert_eq!(aud.currency_code, "AUD");
    let nzd = app
        .create(
            &app.agent,
            pb::Deal {
                value: "610000.00".into(),
                currency_code: "NZD".into(),
                ..titled("Kiwi deal")
            },
        )
        .await
        .unwrap();
    assert_eq!(nzd.currency_code, "NZD");
    let listed = app
        .send(
            &app.agent,
            pb::ListDealsRequest {
                filter: r#"currency_code = "NZD""#.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        listed.deals.iter().map(|d| d.id).collect::<Vec<_>>(),
        [nzd.id]
    );

    // Not an ISO 4217 code (or not in capitals): refused on create and update.
    for code in ["XYZ", "aud", "AU", "AUDD"] {
        assert_invalid(
            app.create(
                &app.agent,
                pb::Deal {
                    currency_code: code.into(),
                    ..titled("Bad currency")
                },
            )
            .await,
            &["deal.currency_code"],
        );
    }
    assert_invalid(
        app.update(
            &app.agent,
            pb::Deal {
                id: aud.id,
                ..Default::default()
            },
            &["currency_code"],
        )
        .await,
        &["deal.currency_code"],
    );
    let changed = app
        .update(
            &app.agent,
            pb::Deal {
                id: aud.id,
                currency_code: "USD".into(),
                ..Default::default()
            },
            &["currency_code"],
        )
        .await
        .unwrap();
    assert_eq!(
        (changed.currency_code.as_str(), changed.value.as_str()),
        ("USD", "549000.00")
    );
}

#[tokio::test]
async fn a_won_deal_is_relayed_to_jetstream_by_crms_own_relay_and_counted_on_its_metrics() {
    let app = TestApp::spawn().await;
    let nats = fusion_testkit::PrivateNats::start();
    let endpoint = |addr: std::net::SocketAddr| {
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy()
    };
    // A second replica, relaying: the relay serves the schema, whichever replica wrote.
    let relaying = TestApp::replica_with_nats(
        &app.db,
        endpoint(app.identity.grpc_addr()),
        app.property_channel.clone(),
        Some(nats.url()),
    )
    .await;
    let d = deal(&app, &app.agent, "Relayed").await;
    app.send(&app.agent, win_deal(d.id)).await.unwrap();

    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let started = std::time::Instant::now();
    let message = loop {
        if let Ok(stream) = js.get_stream("FUSION").await
            && let Ok(message) = stream.get_raw_message(1).await
        {
            break message;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "crm.deal.won not relayed within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(message.subject.as_str(), "fusion.crm.deal.won");
    let envelope = fusion_events::decode_envelope(&message.payload).unwrap();
    assert_eq!(
        (envelope.tenant_id, envelope.aggregate_id),
        (app.acme.tenant_id, d.id)
    );
    let won = <pb::DealWon as prost::Message>::decode(envelope.payload.as_slice()).unwrap();
    assert_eq!(won.deal_id, d.id);

    // The relay counts an event once it is marked sent, just after its PubAck.
    let metrics = loop {
        let metrics = admin_get(relaying.admin_addr(), "/metrics").await;
        if metrics.contains(r#"fusion_events_relayed_total{schema="crm"} 1"#) {
            break metrics;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "not counted on /metrics: {metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        metrics.contains("fusion_events_relay_lag_seconds"),
        "{metrics}"
    );
    relaying.stop().await.unwrap();
}
