//! Leads: the standard methods with the pipeline, phones, tags and custom fields;
//! assignment checked with identity; isolation and permissions; export.

use futures::StreamExt as _;
use tonic::Code;

use fusion_proto::crm::v1 as pb;

use crate::helpers::{TestApp, assert_invalid, budget, expect_code};

#[tokio::test]
async fn a_lead_starts_in_the_first_status_with_its_phone_in_e164() {
    let app = TestApp::spawn().await;
    let lead = app
        .create(
            &app.agent,
            pb::Lead {
                first_name: "Mia".into(),
                last_name: "Nguyen".into(),
                email: "mia@example.com".into(),
                phone: "0412 345 678".into(),
                source: "website".into(),
                stage: "property_enquiry".into(),
                score: Some(80),
                tags: vec!["vip".into(), " vip".into(), "investor".into()],
                custom_fields: vec![budget("300k+")],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(lead.status, "new");
    assert_eq!(lead.phone_e164, "+61412345678");
    assert_eq!(lead.tags, ["vip", "investor"]);
    assert_eq!(lead.custom_fields, [budget("300k+")]);
    assert_eq!(
        (lead.tenant_id, lead.assignee_user_id),
        (app.acme.tenant_id, 0)
    );
    let got = app.get::<pb::Lead>(&app.viewer, lead.id).await.unwrap();
    assert_eq!(got, lead);

    // A New Zealand lead's local number is read as one.
    let kiwi = app
        .create(
            &app.agent,
            pb::Lead {
                last_name: "Walker".into(),
                phone: "021 123 4567".into(),
                country: "New Zealand".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(kiwi.phone_e164, "+64211234567");
}

#[tokio::test]
async fn every_bad_field_of_a_lead_is_named() {
    let app = TestApp::spawn().await;
    assert_invalid(
        app.create(
            &app.agent,
            pb::Lead {
                last_name: " ".into(),
                email: "not-an-email".into(),
                phone: "call me maybe".into(),
                score: Some(101),
                status: "Hot!".into(),
                tags: vec![String::new()],
                custom_fields: vec![budget("1m+")],
                ..Default::default()
            },
        )
        .await,
        &[
            "lead.custom_fields[0].value",
            "lead.email",
            "lead.last_name",
            "lead.phone",
            "lead.score",
            "lead.status",
            "lead.tags",
        ],
    );

    // Keys the tenant's pipeline lacks are refused, naming the choices.
    let status = assert_invalid(
        app.create(
            &app.agent,
            pb::Lead {
                last_name: "A".into(),
                status: "imaginary".into(),
                ..Default::default()
            },
        )
        .await,
        &["lead.status"],
    );
    assert!(status.message().contains("hot"), "{status:?}");
    assert_invalid(
        app.create(
            &app.agent,
            pb::Lead {
                last_name: "A".into(),
                stage: "sold_twice".into(),
                ..Default::default()
            },
        )
        .await,
        &["lead.stage"],
    );
}

#[tokio::test]
async fn a_lead_is_assigned_only_to_an_active_user_of_its_tenant() {
    let app = TestApp::spawn().await;
    let lead = app.lead(&app.agent, "Nguyen").await;
    let mut leads = app.leads();
    let assign = |to: i64, etag: &str| {
        app.acme.req(pb::AssignLeadRequest {
            id: lead.id,
            assignee_user_id: to,
            etag: etag.into(),
            request_id: String::new(),
        })
    };

    let assigned = leads
        .assign_lead(assign(app.agent.user_id, &lead.etag))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(assigned.assignee_user_id, app.agent.user_id);
    expect_code(
        leads
            .assign_lead(assign(app.acme.user_id, &lead.etag))
            .await,
        Code::Aborted,
    );
    // Globex's admin is a user, but not of this tenant: identity says NOT_FOUND.
    for stranger in [app.globex.user_id, 999_999] {
        assert_invalid(
            leads.assign_lead(assign(stranger, "")).await,
            &["assignee_user_id"],
        );
    }
    let unassigned = leads.assign_lead(assign(0, "")).await.unwrap().into_inner();
    assert_eq!(unassigned.assignee_user_id, 0);

    // Create may set the assignee; Update may not.
    let owned = app
        .create(
            &app.acme,
            pb::Lead {
                last_name: "Owned".into(),
                assignee_user_id: app.agent.user_id,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(owned.assignee_user_id, app.agent.user_id);
    expect_code(
        app.create(
            &app.acme,
            pb::Lead {
                last_name: "Stray".into(),
                assignee_user_id: app.globex.user_id,
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    );
    expect_code(
        app.update(
            &app.acme,
            pb::Lead {
                id: owned.id,
                assignee_user_id: app.acme.user_id,
                ..Default::default()
            },
            &["assignee_user_id"],
        )
        .await,
        Code::InvalidArgument,
    );
}

#[tokio::test]
async fn updates_change_masked_fields_keep_e164_current_and_check_the_pipeline() {
    let app = TestApp::spawn().await;
    let lead = app.lead(&app.agent, "Nguyen").await;
    let changed = app
        .update(
            &app.agent,
            pb::Lead {
                id: lead.id,
                phone: "(07) 3123 4567".into(),
                stage: "property_enquiry".into(),
                notes: "not in the mask".into(),
                custom_fields: vec![budget("200k-300k")],
                etag: lead.etag.clone(),
                ..Default::default()
            },
            &["phone", "stage", "custom_fields"],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            changed.phone_e164.as_str(),
            changed.stage.as_str(),
            changed.notes.as_str()
        ),
        ("+61731234567", "property_enquiry", "")
    );
    assert_eq!(changed.custom_fields, [budget("200k-300k")]);
    assert_ne!(changed.etag, lead.etag);

    let moved = app
        .update(
            &app.agent,
            pb::Lead {
                id: lead.id,
                country: "NZ".into(),
                ..Default::default()
            },
            &["country"],
        )
        .await
        .unwrap();
    assert_eq!(moved.phone_e164, "", "not a New Zealand number");

    for (lead_change, path) in [
        (
            pb::Lead {
                id: lead.id,
                stage: "imaginary".into(),
                ..Default::default()
            },
            "stage",
        ),
        (
            pb::Lead {
                id: lead.id,
                ..Default::default()
            },
            "last_name",
        ),
    ] {
        assert_invalid(
            app.update(&app.agent, lead_change, &[path]).await,
            &[format!("lead.{path}")],
        );
    }
    expect_code(
        app.update(
            &app.agent,
            pb::Lead {
                id: lead.id,
                ..Default::default()
            },
            &["phone_e164"],
        )
        .await,
        Code::InvalidArgument,
    );
}

#[tokio::test]
async fn a_leads_status_changes_only_through_set_lead_status() {
    let app = TestApp::spawn().await;
    let lead = app.lead(&app.agent, "Nguyen").await;
    assert_eq!(lead.status, "new");
    let set = |status: &str, etag: &str| {
        app.agent.req(pb::SetLeadStatusRequest {
            id: lead.id,
            status: status.into(),
            etag: etag.into(),
            request_id: String::new(),
        })
    };

    // UpdateLead leaves the status: a mask naming it is refused, and without a mask or
    // with `*` a sent status is ignored.
    assert_invalid(
        app.update(
            &app.agent,
            pb::Lead {
                id: lead.id,
                status: "hot".into(),
                ..Default::default()
            },
            &["status"],
        )
        .await,
        &["update_mask"],
    );
    for paths in [&[][..], &["*"][..]] {
        let updated = app
            .update(
                &app.agent,
                pb::Lead {
                    status: "hot".into(),
                    notes: "Wants a corner block".into(),
                    etag: String::new(),
                    ..lead.clone()
                },
                paths,
            )
            .await
            .unwrap();
        assert_eq!(
            (updated.status.as_str(), updated.notes.as_str()),
            ("new", "Wants a corner block")
        );
    }

    // SetLeadStatus: any live status of the tenant, behind the etag; the status it
    // has returns the lead unchanged.
    let current = app.get::<pb::Lead>(&app.agent, lead.id).await.unwrap();
    expect_code(
        app.leads().set_lead_status(set("hot", &lead.etag)).await,
        Code::Aborted,
    );
    let hot = app
        .leads()
        .set_lead_status(set("hot", &current.etag))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hot.status, "hot");
    assert_ne!(hot.etag, current.etag);
    assert_eq!(
        app.leads()
            .set_lead_status(set("hot", ""))
            .await
            .unwrap()
            .into_inner(),
        hot
    );
    let closed = app
        .leads()
        .set_lead_status(set("not_interested", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed.status, "not_interested");
    for bad in ["imaginary", "", "Hot!"] {
        assert_invalid(app.leads().set_lead_status(set(bad, "")).await, &["status"]);
    }
    // Another tenant's lead is not found; a viewer may not.
    expect_code(
        app.send(
            &app.globex,
            pb::SetLeadStatusRequest {
                id: lead.id,
                status: "hot".into(),
                ..Default::default()
            },
        )
        .await,
        Code::NotFound,
    );
    expect_code(
        app.send(
            &app.viewer,
            pb::SetLeadStatusRequest {
                id: lead.id,
                status: "hot".into(),
                ..Default::default()
            },
        )
        .await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn leads_filter_on_status_tags_and_custom_fields_and_page_in_order() {
    let app = TestApp::spawn().await;
    for (name, status, tags, budget_value) in [
        ("Adams", "hot", vec!["vip"], "300k+"),
        ("Brown", "new", vec!["vip", "investor"], "200k-300k"),
        ("Chen", "hot", vec![], "300k+"),
        ("Davis", "nurture", vec!["investor"], "100k-200k"),
    ] {
        app.create(
            &app.agent,
            pb::Lead {
                last_name: name.into(),
                status: status.into(),
                tags: tags.into_iter().map(String::from).collect(),
                custom_fields: vec![budget(budget_value)],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let names = |filter: &str, order_by: &str| {
        let mut leads = app.leads();
        let req = app.viewer.req(pb::ListLeadsRequest {
            filter: filter.into(),
            order_by: order_by.into(),
            ..Default::default()
        });
        async move {
            leads
                .list_leads(req)
                .await
                .unwrap()
                .into_inner()
                .leads
                .into_iter()
                .map(|l| l.last_name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        names(r#"status = "hot""#, "last_name").await,
        ["Adams", "Chen"]
    );
    assert_eq!(
        names(r#"tags:"vip""#, "last_name desc").await,
        ["Brown", "Adams"]
    );
    assert_eq!(
        names(r#"custom_fields.budget = "300k+" AND NOT tags:"vip""#, "").await,
        ["Chen"]
    );
    assert_eq!(
        names("", "last_name").await,
        ["Adams", "Brown", "Chen", "Davis"]
    );

    let mut leads = app.leads();
    let first = leads
        .list_leads(app.viewer.req(pb::ListLeadsRequest {
            page_size: 3,
            order_by: "last_name".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((first.leads.len(), first.total_size), (3, 4));
    let second = leads
        .list_leads(app.viewer.req(pb::ListLeadsRequest {
            page_size: 3,
            order_by: "last_name".into(),
            page_token: first.next_page_token.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.leads[0].last_name, "Davis");
    expect_code(
        leads
            .list_leads(app.viewer.req(pb::ListLeadsRequest {
                page_size: 3,
                order_by: "first_name".into(),
                page_token: first.next_page_token,
                ..Default::default()
            }))
            .await,
        Code::InvalidArgument,
    );
    expect_code(
        leads
            .list_leads(app.viewer.req(pb::ListLeadsRequest {
                filter: "password = \"x\"".into(),
                ..Default::default()
            }))
            .await,
        Code::InvalidArgument,
    );
}

#[tokio::test]
async fn export_streams_every_matching_lead_in_order_across_pages() {
    let app = TestApp::spawn().await;
    app.lead(&app.agent, "Seed").await; // the tenant's pipeline exists from here
    let db = app.crm.state().db.clone();
    let mut tx = db.begin(app.acme.tenant_id).await.unwrap();
    sqlx::query(
        "INSERT INTO crm.leads (tenant_id, last_name, status, score)
         SELECT $1, 'Lead ' || lpad(n::text, 4, '0'), CASE WHEN n % 3 = 0 THEN 'hot' ELSE 'new' END, n % 101
           FROM generate_series(1, 1200) AS n",
    )
    .bind(app.acme.tenant_id)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut stream = app
        .leads()
        .export_leads(app.viewer.req(pb::ExportLeadsRequest {
            filter: r#"status = "hot""#.into(),
            order_by: "last_name".into(),
            show_deleted: false,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut names = Vec::new();
    while let Some(message) = stream.next().await {
        let message = message.unwrap();
        // Progress: this lead's place in the export, of the 400 matching at the start.
        assert_eq!(
            (message.exported_count, message.total_count),
            (names.len() as i64 + 1, 400)
        );
        let lead = message.lead.expect("each message carries a lead");
        assert_eq!(lead.status, "hot");
        names.push(lead.last_name);
    }
    assert_eq!(names.len(), 400);
    assert!(names.windows(2).all(|w| w[0] < w[1]), "in order, once each");

    expect_code(
        app.leads()
            .export_leads(app.viewer.req(pb::ExportLeadsRequest {
                filter: "nonsense ==".into(),
                ..Default::default()
            }))
            .await,
        Code::InvalidArgument,
    );
    let none = app
        .leads()
        .export_leads(app.globex.req(pb::ExportLeadsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .count()
        .await;
    assert_eq!(none, 0, "another tenant exports nothing of acme's");
}

/// Assign is the lead's own method: the conformance suite covers the standard ones.
#[tokio::test]
async fn assigning_is_bound_to_the_tenant_and_needs_the_write_permission() {
    let app = TestApp::spawn().await;
    let lead = app.lead(&app.acme, "Nguyen").await;
    for (who, code) in [
        (&app.globex, Code::NotFound),
        (&app.viewer, Code::PermissionDenied),
    ] {
        expect_code(
            app.send(
                who,
                pb::AssignLeadRequest {
                    id: lead.id,
                    assignee_user_id: 0,
                    etag: String::new(),
                    request_id: String::new(),
                },
            )
            .await,
            code,
        );
    }
}
