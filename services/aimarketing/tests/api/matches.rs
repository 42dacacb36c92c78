//! MatchLotsForLead over gRPC against the real crm and property: a lead's custom
//! fields rank the tenant's available lots (held lots and another tenant's left out),
//! with a reason for each criterion; another tenant's lead, a lead stating nothing, and
//! callers lacking a permission the RPC declares are refused.

use tonic::Code;

use fusion_proto::aimarketing::v1 as pb;
use fusion_proto::aimarketing::v1::match_service_client::MatchServiceClient;
use fusion_proto::crm::v1 as crmpb;
use fusion_proto::crm::v1::lead_service_client::LeadServiceClient;
use fusion_proto::property::v1 as proppb;
use fusion_proto::property::v1::{
    feature_service_client::FeatureServiceClient, lot_service_client::LotServiceClient,
    project_service_client::ProjectServiceClient, stage_service_client::StageServiceClient,
};

use crate::helpers::{TestApp, User, assert_invalid, expect_code, reason, user_with_role};

/// A custom field of `kind` named `name` holding `value` (a select's only option).
fn field(name: &str, kind: &str, value: &str) -> crmpb::CustomField {
    crmpb::CustomField {
        name: name.into(),
        r#type: kind.into(),
        options: if kind == "select" {
            vec![value.into()]
        } else {
            vec![]
        },
        value: value.into(),
        ..Default::default()
    }
}

/// Creates a lead of `who` with `fields`; returns its id.
async fn lead_wanting(app: &TestApp, who: &User, fields: Vec<crmpb::CustomField>) -> i64 {
    LeadServiceClient::new(app.peers.crm.clone())
        .create_lead(who.req(crmpb::CreateLeadRequest {
            lead: Some(crmpb::Lead {
                first_name: "Noah".into(),
                last_name: "Patel".into(),
                custom_fields: fields,
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect("lead created")
        .into_inner()
        .id
}

/// A project of `who` in `suburb`, QLD, with one stage; returns (project, stage).
async fn project(app: &TestApp, who: &User, name: &str, suburb: &str) -> (i64, i64) {
    let project = ProjectServiceClient::new(app.peers.property.clone())
        .create_project(who.req(proppb::CreateProjectRequest {
            project: Some(proppb::Project {
                name: name.into(),
                slug: name.to_lowercase().replace(' ', "-"),
                suburb: suburb.into(),
                state: "QLD".into(),
                status: "selling".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect("project created")
        .into_inner();
    let stage = StageServiceClient::new(app.peers.property.clone())
        .create_stage(who.req(proppb::CreateStageRequest {
            stage: Some(proppb::Stage {
                project_id: project.id,
                name: "Stage 1".into(),
                status: "selling".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect("stage created")
        .into_inner();
    (project.id, stage.id)
}

/// A lot of `who` numbered `number` in `stage`; returns its id.
async fn lot(
    app: &TestApp,
    who: &User,
    stage: i64,
    number: &str,
    price: &str,
    bedrooms: i32,
    feature_ids: Vec<i64>,
) -> i64 {
    LotServiceClient::new(app.peers.property.clone())
        .create_lot(who.req(proppb::CreateLotRequest {
            lot: Some(proppb::Lot {
                stage_id: stage,
                lot_number: number.into(),
                price: price.into(),
                bedrooms: Some(bedrooms),
                feature_ids,
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await
        .expect("lot created")
        .into_inner()
        .id
}

async fn match_lots(
    app: &TestApp,
    who: &User,
    r: pb::MatchLotsForLeadRequest,
) -> Result<pb::MatchLotsForLeadResponse, tonic::Status> {
    MatchServiceClient::new(app.channel.clone())
        .match_lots_for_lead(who.req(r))
        .await
        .map(tonic::Response::into_inner)
}

fn for_lead(lead_id: i64) -> pb::MatchLotsForLeadRequest {
    pb::MatchLotsForLeadRequest {
        lead_id,
        ..Default::default()
    }
}

/// Each match's lot and score, in order.
fn ranked(response: &pb::MatchLotsForLeadResponse) -> Vec<(i64, i32)> {
    response
        .matches
        .iter()
        .map(|m| (m.lot_id, m.score))
        .collect()
}

#[tokio::test]
async fn a_lead_gets_the_available_lots_in_its_budget_first_with_a_reason_per_criterion() {
    let app = TestApp::spawn().await;
    let agent = user_with_role(
        &app.identity_channel().await,
        &app.acme,
        "agent@acme.test",
        "sales_agent",
    )
    .await;
    let pool = FeatureServiceClient::new(app.peers.property.clone())
        .create_feature(app.acme.req(proppb::CreateFeatureRequest {
            feature: Some(proppb::Feature {
                name: "Pool".into(),
                category: "lot".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .id;
    let (riverside, stage) = project(&app, &app.acme, "Riverside Estate", "Yeronga").await;
    let in_budget = lot(&app, &app.acme, stage, "1", "549000.00", 4, vec![pool]).await;
    let short_a_bedroom = lot(&app, &app.acme, stage, "2", "580000.00", 3, vec![]).await;
    let too_dear = lot(&app, &app.acme, stage, "3", "700000.00", 4, vec![]).await;
    let too_cheap = lot(&app, &app.acme, stage, "4", "450000.00", 4, vec![]).await;
    let held = lot(&app, &app.acme, stage, "5", "520000.00", 4, vec![]).await;
    LotServiceClient::new(app.peers.property.clone())
        .hold_lot(app.acme.req(proppb::HoldLotRequest {
            id: held,
            reason: "another buyer".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let (_, parkside_stage) = project(&app, &app.acme, "Parkside", "Fairfield").await;
    let elsewhere = lot(&app, &app.acme, parkside_stage, "9", "560000.00", 4, vec![]).await;
    // Another tenant's stock is never considered.
    let (_, globex_stage) = project(&app, &app.globex, "Globex Gardens", "Yeronga").await;
    lot(&app, &app.globex, globex_stage, "1", "549000.00", 4, vec![]).await;

    let lead = lead_wanting(
        &app,
        &app.acme,
        vec![
            field("budget", "select", "500k-600k"),
            field("bedrooms", "number", "4"),
            field("preferred_location", "text", "Yeronga"),
        ],
    )
    .await;
    // A sales agent holds no ai-marketing permission, and needs none.
    let found = match_lots(&app, &agent, for_lead(lead)).await.unwrap();
    assert_eq!(
        found.criteria,
        Some(pb::LeadCriteria {
            min_price: "500000.00".into(),
            max_price: "600000.00".into(),
            min_bedrooms: 4,
            locations: vec!["Yeronga".into()],
            features: vec![],
        })
    );
    assert_eq!(
        found.considered_lot_count, 5,
        "the held lot is not for sale"
    );
    // In budget, bedrooms and place: 85 of 85. A bedroom short: 72 of 85. Out of
    // budget by 10 % or more: 45 of 85 each, the cheaper first. Elsewhere: 65 of 85.
    assert_eq!(
        ranked(&found),
        [
            (in_budget, 100),
            (short_a_bedroom, 85),
            (elsewhere, 76),
            (too_cheap, 53),
            (too_dear, 53)
        ]
    );
    let best = &found.matches[0];
    assert_eq!(
        (
            best.project_id,
            best.lot_number.as_str(),
            best.price.as_str()
        ),
        (riverside, "1", "549000.00")
    );
    let reasons: Vec<(&str, i32, i32, &str)> = best
        .reasons
        .iter()
        .map(|r| {
            (
                r.criterion.as_str(),
                r.points,
                r.max_points,
                r.detail.as_str(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("budget", 40, 40, "$549,000 is within 500k-600k"),
            ("bedrooms", 25, 25, "4 bedrooms, 4 wanted"),
            (
                "location",
                20,
                20,
                "Yeronga matches Riverside Estate, Yeronga, QLD"
            ),
        ]
    );
    let second = &found.matches[1].reasons[1];
    assert_eq!(
        (second.points, second.detail.as_str()),
        (12, "3 of 4 bedrooms")
    );
    let dear = &found.matches[4].reasons[0];
    assert_eq!(
        (dear.points, dear.detail.as_str()),
        (0, "$700,000 is $100,000 over 500k-600k")
    );

    // The best two; one project's lots only.
    let top = match_lots(
        &app,
        &agent,
        pb::MatchLotsForLeadRequest {
            lead_id: lead,
            max_results: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        ranked(&top),
        [(in_budget, 100), (short_a_bedroom, 85)],
        "the best two"
    );
    assert_eq!(top.considered_lot_count, 5);
    let riverside_only = match_lots(
        &app,
        &agent,
        pb::MatchLotsForLeadRequest {
            lead_id: lead,
            project_id: riverside,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(riverside_only.considered_lot_count, 4);
    assert!(
        riverside_only
            .matches
            .iter()
            .all(|m| m.project_id == riverside)
    );

    // Features count when wanted: the pool lot keeps its lead, the others lose theirs.
    let wants_a_pool = lead_wanting(
        &app,
        &app.acme,
        vec![
            field("budget", "text", "600k+"),
            field("features", "text", "Pool, Solar"),
        ],
    )
    .await;
    let found = match_lots(&app, &agent, for_lead(wants_a_pool))
        .await
        .unwrap();
    assert_eq!(found.criteria.unwrap().features, ["Pool", "Solar"]);
    // 600k+: 580k is 3.3 % under (27 of 40); 549k 8.5 % under (6 of 40) but half the
    // features (8 of 15); 700k within.
    assert_eq!(found.matches[0].lot_id, too_dear);
    let pool_lot = found
        .matches
        .iter()
        .find(|m| m.lot_id == in_budget)
        .unwrap();
    assert_eq!(
        pool_lot.reasons[1].detail, "1 of 2 features: Pool",
        "{pool_lot:?}"
    );
}

#[tokio::test]
async fn another_tenant_s_lead_a_lead_wanting_nothing_and_bad_arguments_are_refused() {
    let app = TestApp::spawn().await;
    let lead = lead_wanting(&app, &app.acme, vec![field("bedrooms", "number", "3")]).await;
    // Globex cannot see Acme's lead: crm does not know it for them.
    assert_invalid(
        match_lots(&app, &app.globex, for_lead(lead)).await,
        &["lead_id"],
    );
    assert_invalid(
        match_lots(&app, &app.acme, for_lead(lead + 1_000)).await,
        &["lead_id"],
    );
    assert_invalid(
        match_lots(
            &app,
            &app.acme,
            pb::MatchLotsForLeadRequest {
                lead_id: 0,
                project_id: -1,
                max_results: -1,
            },
        )
        .await,
        &["lead_id", "project_id", "max_results"],
    );
    // A lead stating nothing that can be matched.
    let vague = lead_wanting(&app, &app.acme, vec![field("budget", "text", "ask me")]).await;
    let status = expect_code(
        match_lots(&app, &app.acme, for_lead(vague)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "LEAD_HAS_NO_CRITERIA");
    // With no lots at all, a lead with criteria matches nothing.
    let found = match_lots(&app, &app.acme, for_lead(lead)).await.unwrap();
    assert_eq!((found.considered_lot_count, found.matches.len()), (0, 0));
}

#[tokio::test]
async fn a_caller_lacking_lot_or_lead_reads_is_refused_before_anything_is_read() {
    let app = TestApp::spawn().await;
    let lead = lead_wanting(&app, &app.acme, vec![field("bedrooms", "number", "3")]).await;
    for permission in ["property.lots.read", "crm.leads.read"] {
        let without = app.user_without(permission).await;
        let status = expect_code(
            match_lots(&app, &without, for_lead(lead)).await,
            Code::PermissionDenied,
        );
        assert!(status.message().contains(permission), "{status:?}");
    }
}
