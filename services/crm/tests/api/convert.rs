//! ConvertLead: a lead becomes a contact and, if asked, a deal, all at once or not at
//! all; once only, however many callers race; retries return the first result; and
//! each conversion is announced (`crm.lead.converted`) exactly once, in its
//! transaction.

use tonic::Code;

use fusion_proto::crm::v1 as pb;

use crate::calls::convert_lead;
use crate::helpers::{TestApp, User, expect_code, reason, violated_fields};

async fn convert(
    app: &TestApp,
    who: &User,
    r: pb::ConvertLeadRequest,
) -> Result<pb::ConvertLeadResponse, tonic::Status> {
    app.send(who, r).await
}

/// The `crm.lead.converted` payloads in crm's outbox about lead `id` of `tenant`, in
/// order.
async fn conversions_announced(app: &TestApp, tenant: i64, id: i64) -> Vec<pb::LeadConverted> {
    let db = app.crm.state().db.clone();
    let mut tx = db.begin(tenant).await.unwrap();
    let events: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT event_type, aggregate_type, payload FROM crm.outbox_events
          WHERE aggregate_id = $1 AND event_type LIKE 'crm.lead.%' ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    events
        .into_iter()
        .map(|(event_type, aggregate_type, payload)| {
            assert_eq!(
                (event_type.as_str(), aggregate_type.as_str()),
                ("crm.lead.converted", "lead")
            );
            <pb::LeadConverted as prost::Message>::decode(payload.as_slice()).unwrap()
        })
        .collect()
}

async fn contact_count(app: &TestApp, who: &User) -> i32 {
    app.send(who, pb::ListContactsRequest::default())
        .await
        .unwrap()
        .total_size
}

async fn rich_lead(app: &TestApp) -> pb::Lead {
    app.create(
        &app.acme,
        pb::Lead {
            first_name: "Mia".into(),
            last_name: "Nguyen".into(),
            email: "mia@example.com".into(),
            phone: "0412 345 678".into(),
            suburb: "Yeronga".into(),
            assignee_user_id: app.agent.user_id,
            tags: vec!["vip".into()],
            status: "hot".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn converting_a_lead_makes_its_contact_and_deal_in_one_go() {
    let app = TestApp::spawn().await;
    let lead = rich_lead(&app).await;
    let lot = app.lot(&app.acme, "riverside").await;
    let done = convert(
        &app,
        &app.agent,
        pb::ConvertLeadRequest {
            id: lead.id,
            contact: Some(pb::Contact {
                company: "Nguyen Family Trust".into(),
                ..Default::default()
            }),
            create_deal: true,
            deal: Some(pb::Deal {
                lot_id: lot,
                value: "549000.00".into(),
                ..Default::default()
            }),
            lead_status: "not_interested".into(),
            etag: lead.etag.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let contact = done.contact.unwrap();
    let deal = done.deal.unwrap();
    let converted = done.lead.unwrap();
    assert_eq!(
        (
            contact.first_name.as_str(),
            contact.last_name.as_str(),
            contact.email.as_str(),
            contact.phone_e164.as_str(),
            contact.company.as_str(),
            contact.lead_id
        ),
        (
            "Mia",
            "Nguyen",
            "mia@example.com",
            "+61412345678",
            "Nguyen Family Trust",
            lead.id
        )
    );
    assert_eq!(contact.tags, ["vip"]);
    assert_eq!(
        (
            deal.lead_id,
            deal.contact_id,
            deal.lot_id,
            deal.assignee_user_id
        ),
        (lead.id, contact.id, lot, app.agent.user_id)
    );
    assert_eq!(
        (
            deal.title.as_str(),
            deal.stage.as_str(),
            deal.status.as_str(),
            deal.value.as_str()
        ),
        ("Mia Nguyen", "property_enquiry", "open", "549000.00")
    );
    assert_eq!(
        (converted.converted_contact_id, converted.converted_deal_id),
        (contact.id, deal.id)
    );
    assert!(converted.convert_time.is_some());
    assert_eq!(converted.status, "not_interested");
    assert_eq!(
        conversions_announced(&app, app.acme.tenant_id, lead.id).await,
        [pb::LeadConverted {
            lead_id: lead.id,
            contact_id: contact.id,
            deal_id: deal.id,
            acting_user_id: app.agent.user_id,
            convert_time: converted.convert_time,
        }]
    );
}

#[tokio::test]
async fn a_lead_converts_once_and_a_retry_returns_the_first_result() {
    let app = TestApp::spawn().await;
    let lead = rich_lead(&app).await;
    let request = pb::ConvertLeadRequest {
        id: lead.id,
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let first = convert(&app, &app.agent, request.clone()).await.unwrap();
    assert!(first.deal.is_none());
    assert_eq!(convert(&app, &app.agent, request).await.unwrap(), first);
    let status = expect_code(
        convert(&app, &app.agent, convert_lead(lead.id)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "ALREADY_CONVERTED");
    assert_eq!(contact_count(&app, &app.agent).await, 1);
    // Announced once, without a deal, however often it was asked.
    let lead_after = first.lead.unwrap();
    assert_eq!(
        conversions_announced(&app, app.acme.tenant_id, lead.id).await,
        [pb::LeadConverted {
            lead_id: lead.id,
            contact_id: lead_after.converted_contact_id,
            deal_id: 0,
            acting_user_id: app.agent.user_id,
            convert_time: lead_after.convert_time,
        }]
    );

    // Racing conversions of another lead: exactly one wins.
    let other = app.lead(&app.agent, "Walker").await;
    let attempts = (0..6).map(|_| convert(&app, &app.agent, convert_lead(other.id)));
    let results = futures::future::join_all(attempts).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for lost in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(lost.code(), Code::FailedPrecondition);
    }
    assert_eq!(contact_count(&app, &app.agent).await, 2);
    assert_eq!(
        conversions_announced(&app, app.acme.tenant_id, other.id)
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_refused_conversion_leaves_no_contact_deal_or_mark() {
    let app = TestApp::spawn().await;
    let lead = rich_lead(&app).await;
    let foreign_lot = app.lot(&app.globex, "elsewhere").await;
    for (deal, field) in [
        (
            pb::Deal {
                stage: "crashed".into(),
                ..Default::default()
            },
            "deal.stage",
        ),
        (
            pb::Deal {
                lot_id: foreign_lot,
                ..Default::default()
            },
            "deal.lot_id",
        ),
        (
            pb::Deal {
                value: "1e5".into(),
                ..Default::default()
            },
            "deal.value",
        ),
    ] {
        let status = expect_code(
            convert(
                &app,
                &app.agent,
                pb::ConvertLeadRequest {
                    id: lead.id,
                    create_deal: true,
                    deal: Some(deal),
                    ..Default::default()
                },
            )
            .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), [field]);
    }
    let status = expect_code(
        convert(
            &app,
            &app.agent,
            pb::ConvertLeadRequest {
                id: lead.id,
                lead_status: "imaginary".into(),
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["lead_status"]);
    expect_code(
        convert(
            &app,
            &app.agent,
            pb::ConvertLeadRequest {
                id: lead.id,
                etag: "\"99\"".into(),
                ..Default::default()
            },
        )
        .await,
        Code::Aborted,
    );
    assert_eq!(contact_count(&app, &app.agent).await, 0);
    let still = app.get::<pb::Lead>(&app.agent, lead.id).await.unwrap();
    assert!(still.convert_time.is_none() && still.converted_contact_id == 0);
    assert!(
        conversions_announced(&app, app.acme.tenant_id, lead.id)
            .await
            .is_empty()
    );
    let deals = app
        .send(&app.agent, pb::ListDealsRequest::default())
        .await
        .unwrap();
    assert_eq!(deals.total_size, 0);
}

#[tokio::test]
async fn another_tenant_cannot_convert_and_a_viewer_may_not() {
    let app = TestApp::spawn().await;
    let lead = rich_lead(&app).await;
    let request = convert_lead(lead.id);
    expect_code(
        convert(&app, &app.globex, request.clone()).await,
        Code::NotFound,
    );
    expect_code(
        convert(&app, &app.viewer, request).await,
        Code::PermissionDenied,
    );
    assert_eq!(contact_count(&app, &app.agent).await, 0);
}
