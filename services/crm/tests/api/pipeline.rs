//! The tenant's pipeline: defaults on first use, statuses and stages managed by those
//! allowed to, keys that stay reserved, and new values only from live keys.

use tonic::Code;

use fusion_proto::crm::v1 as pb;

use crate::helpers::{TestApp, assert_invalid, expect_code, violated_fields};

#[tokio::test]
async fn a_tenant_starts_with_the_default_pipeline_in_order() {
    let app = TestApp::spawn().await;
    let mut pipeline = app.pipeline();
    let statuses = pipeline
        .list_lead_statuses(app.viewer.req(pb::ListLeadStatusesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<&str> = statuses
        .lead_statuses
        .iter()
        .map(|s| s.key.as_str())
        .collect();
    assert_eq!(
        keys,
        ["new", "nurture", "hot", "call_back", "not_interested"]
    );
    assert!(statuses.lead_statuses[4].closed);
    let stages = pipeline
        .list_deal_stages(app.viewer.req(pb::ListDealStagesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<&str> = stages.deal_stages.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "property_enquiry",
            "property_reserved",
            "signed_contract",
            "unconditional",
            "bc_required",
            "land_settled",
            "construction",
            "settlement_handover",
            "crashed",
        ]
    );
    let outcome = |k: &str| {
        stages
            .deal_stages
            .iter()
            .find(|s| s.key == k)
            .unwrap()
            .outcome
            .clone()
    };
    assert_eq!(
        (
            outcome("construction"),
            outcome("settlement_handover"),
            outcome("crashed")
        ),
        ("open".into(), "won".into(), "lost".into())
    );
    // Each tenant has its own.
    let globex = pipeline
        .list_lead_statuses(app.globex.req(pb::ListLeadStatusesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        globex
            .lead_statuses
            .iter()
            .all(|s| s.tenant_id == app.globex.tenant_id)
    );
    expect_code(
        pipeline
            .get_lead_status(app.globex.req(pb::GetLeadStatusRequest {
                id: statuses.lead_statuses[0].id,
            }))
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn managers_shape_the_pipeline_and_leads_follow_its_live_keys() {
    let app = TestApp::spawn().await;
    let mut pipeline = app.pipeline();
    let new_status = |key: &str| pb::CreateLeadStatusRequest {
        lead_status: Some(pb::LeadStatus {
            key: key.into(),
            label: "Waiting on finance".into(),
            position: 25,
            ..Default::default()
        }),
        request_id: String::new(),
    };
    // An agent works the pipeline but does not shape it.
    let status = expect_code(
        pipeline
            .create_lead_status(app.agent.req(new_status("finance_pending")))
            .await,
        Code::PermissionDenied,
    );
    assert!(
        status.message().contains("crm.pipeline.write"),
        "{status:?}"
    );
    let created = pipeline
        .create_lead_status(app.acme.req(new_status("finance_pending")))
        .await
        .unwrap()
        .into_inner();
    expect_code(
        pipeline
            .create_lead_status(app.acme.req(new_status("finance_pending")))
            .await,
        Code::AlreadyExists,
    );
    let status = expect_code(
        pipeline
            .create_lead_status(app.acme.req(new_status("Finance Pending")))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["lead_status.key"]);

    let lead = app
        .create(
            &app.agent,
            pb::Lead {
                last_name: "Nguyen".into(),
                status: "finance_pending".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(lead.status, "finance_pending");

    // A deleted status keeps its leads valid but takes no new ones.
    pipeline
        .delete_lead_status(app.acme.req(pb::DeleteLeadStatusRequest {
            id: created.id,
            etag: String::new(),
        }))
        .await
        .unwrap();
    let still = app.get::<pb::Lead>(&app.agent, lead.id).await.unwrap();
    assert_eq!(still.status, "finance_pending");
    expect_code(
        app.create(
            &app.agent,
            pb::Lead {
                last_name: "Later".into(),
                status: "finance_pending".into(),
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    );
    // Its key stays reserved: recreating it is ALREADY_EXISTS; undeleting brings it back.
    expect_code(
        pipeline
            .create_lead_status(app.acme.req(new_status("finance_pending")))
            .await,
        Code::AlreadyExists,
    );
    pipeline
        .undelete_lead_status(
            app.acme
                .req(pb::UndeleteLeadStatusRequest { id: created.id }),
        )
        .await
        .unwrap();

    // Keys and outcomes never change.
    let stages = pipeline
        .list_deal_stages(app.acme.req(pb::ListDealStagesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let crashed = stages.deal_stages.last().unwrap();
    for path in ["key", "outcome"] {
        expect_code(
            pipeline
                .update_deal_stage(app.acme.req(pb::UpdateDealStageRequest {
                    deal_stage: Some(pb::DealStage {
                        id: crashed.id,
                        key: "fell_over".into(),
                        outcome: "open".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec![path.into()],
                    }),
                }))
                .await,
            Code::InvalidArgument,
        );
    }
    let relabelled = pipeline
        .update_deal_stage(app.acme.req(pb::UpdateDealStageRequest {
            deal_stage: Some(pb::DealStage {
                id: crashed.id,
                label: "Fell over".into(),
                default_probability: Some(0),
                etag: crashed.etag.clone(),
                ..Default::default()
            }),
            update_mask: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (relabelled.label.as_str(), relabelled.outcome.as_str()),
        ("Fell over", "lost")
    );
    assert_invalid(
        pipeline
            .create_deal_stage(app.acme.req(pb::CreateDealStageRequest {
                deal_stage: Some(pb::DealStage {
                    key: "handover_plus".into(),
                    label: "Handover+".into(),
                    outcome: "maybe".into(),
                    default_probability: Some(140),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await,
        &["deal_stage.default_probability", "deal_stage.outcome"],
    );
}

#[tokio::test]
async fn the_last_open_status_or_stage_cannot_be_deleted_or_closed() {
    let app = TestApp::spawn().await;
    let mut pipeline = app.pipeline();
    let statuses = pipeline
        .list_lead_statuses(app.acme.req(pb::ListLeadStatusesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .lead_statuses;
    let open: Vec<&pb::LeadStatus> = statuses.iter().filter(|s| !s.closed).collect();
    for status in &open[..open.len() - 1] {
        pipeline
            .delete_lead_status(app.acme.req(pb::DeleteLeadStatusRequest {
                id: status.id,
                etag: String::new(),
            }))
            .await
            .unwrap();
    }
    let last = open[open.len() - 1];
    let status = expect_code(
        pipeline
            .delete_lead_status(app.acme.req(pb::DeleteLeadStatusRequest {
                id: last.id,
                etag: String::new(),
            }))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(crate::helpers::reason(&status), "LAST_OPEN");
    expect_code(
        pipeline
            .update_lead_status(app.acme.req(pb::UpdateLeadStatusRequest {
                lead_status: Some(pb::LeadStatus {
                    id: last.id,
                    closed: true,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["closed".into()],
                }),
            }))
            .await,
        Code::FailedPrecondition,
    );
    // A lead still has somewhere to start.
    let lead = app.lead(&app.agent, "Starter").await;
    assert_eq!(lead.status, last.key);

    let stages = pipeline
        .list_deal_stages(app.acme.req(pb::ListDealStagesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .deal_stages;
    let open: Vec<&pb::DealStage> = stages.iter().filter(|s| s.outcome == "open").collect();
    for stage in &open[..open.len() - 1] {
        pipeline
            .delete_deal_stage(app.acme.req(pb::DeleteDealStageRequest {
                id: stage.id,
                etag: String::new(),
            }))
            .await
            .unwrap();
    }
    expect_code(
        pipeline
            .delete_deal_stage(app.acme.req(pb::DeleteDealStageRequest {
                id: open[open.len() - 1].id,
                etag: String::new(),
            }))
            .await,
        Code::FailedPrecondition,
    );
    // Won and lost stages may go.
    let won = stages.iter().find(|s| s.outcome == "won").unwrap();
    pipeline
        .delete_deal_stage(app.acme.req(pb::DeleteDealStageRequest {
            id: won.id,
            etag: String::new(),
        }))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_tenants_default_country_decides_how_its_local_phone_numbers_are_read() {
    let app = TestApp::spawn().await;
    let mut pipeline = app.pipeline();
    let settings = pipeline
        .get_crm_settings(app.viewer.req(pb::GetCrmSettingsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(settings.default_region_code, "AU");
    let update = |who: &crate::helpers::User, code: &str, etag: &str| {
        who.req(pb::UpdateCrmSettingsRequest {
            crm_settings: Some(pb::CrmSettings {
                default_region_code: code.into(),
                etag: etag.into(),
                ..Default::default()
            }),
            update_mask: None,
        })
    };
    expect_code(
        pipeline
            .update_crm_settings(update(&app.agent, "NZ", ""))
            .await,
        Code::PermissionDenied,
    );
    for bad in ["ZZ", "Australia", "N"] {
        assert_invalid(
            pipeline
                .update_crm_settings(update(&app.acme, bad, ""))
                .await,
            &["crm_settings.default_region_code"],
        );
    }
    let nz = pipeline
        .update_crm_settings(update(&app.acme, "nz", &settings.etag))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(nz.default_region_code, "NZ");
    expect_code(
        pipeline
            .update_crm_settings(update(&app.acme, "AU", &settings.etag))
            .await,
        Code::Aborted,
    );

    let local = |who: &crate::helpers::User| {
        who.req(pb::CreateLeadRequest {
            lead: Some(pb::Lead {
                last_name: "Walker".into(),
                phone: "021 123 4567".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
    };
    let kiwi = app
        .leads()
        .create_lead(local(&app.agent))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kiwi.phone_e164, "+64211234567");
    // Another tenant keeps the service default and reads the same digits as a Sydney
    // number.
    let other = app
        .leads()
        .create_lead(local(&app.globex))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(other.phone_e164, "+61211234567");
    let globex = pipeline
        .get_crm_settings(app.globex.req(pb::GetCrmSettingsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(globex.default_region_code, "AU");
}
