//! PlanService.

use tonic::Code;

use fusion_proto::identity::v1 as pb;
use prost_types::FieldMask;

use crate::helpers::{TestApp, as_user, expect_code, violated_fields};

fn starter() -> pb::CreatePlanRequest {
    pb::CreatePlanRequest {
        plan: Some(pb::Plan {
            code: "starter".into(),
            name: "Starter".into(),
            price_monthly: "99.00".into(),
            currency: "AUD".into(),
            max_users: 5,
            features: vec!["crm".into()],
            active: true,
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn the_platform_manages_plans_and_tenants_read_them() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let plan = app
        .plans()
        .create_plan(as_user(&app.platform, starter()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((plan.price_monthly.as_str(), plan.max_users), ("99.00", 5));
    expect_code(
        app.plans().create_plan(as_user(&admin, starter())).await,
        Code::PermissionDenied,
    );
    expect_code(
        app.plans()
            .create_plan(as_user(&app.platform, starter()))
            .await,
        Code::AlreadyExists,
    );
    let seen = app
        .plans()
        .get_plan(as_user(&admin, pb::GetPlanRequest { id: plan.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen, plan);
    let updated = app
        .plans()
        .update_plan(as_user(
            &app.platform,
            pb::UpdatePlanRequest {
                plan: Some(pb::Plan {
                    id: plan.id,
                    price_monthly: "129.50".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["price_monthly".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.price_monthly.as_str(), updated.name.as_str()),
        ("129.50", "Starter")
    );
    let listed = app
        .plans()
        .list_plans(as_user(
            &admin,
            pb::ListPlansRequest {
                filter: "price_monthly > 100".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 1);
    app.plans()
        .delete_plan(as_user(
            &app.platform,
            pb::DeletePlanRequest {
                id: plan.id,
                etag: updated.etag,
            },
        ))
        .await
        .unwrap();
    // AIP-164: Get still finds the soft-deleted plan, with its delete_time.
    let found = app
        .plans()
        .get_plan(as_user(&admin, pb::GetPlanRequest { id: plan.id }))
        .await
        .unwrap()
        .into_inner();
    assert!(found.delete_time.is_some(), "{found:?}");
    app.plans()
        .undelete_plan(as_user(
            &app.platform,
            pb::UndeletePlanRequest { id: plan.id },
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn plan_money_and_codes_are_validated() {
    let app = TestApp::spawn().await;
    let mut bad = starter();
    let plan = bad.plan.as_mut().unwrap();
    plan.code = "Not Valid".into();
    plan.price_monthly = "12.345".into();
    plan.currency = "dollars".into();
    plan.max_users = -1;
    let status = expect_code(
        app.plans().create_plan(as_user(&app.platform, bad)).await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        [
            "plan.code",
            "plan.price_monthly",
            "plan.currency",
            "plan.max_users"
        ]
    );
    let mut negative = starter();
    negative.plan.as_mut().unwrap().price_monthly = "-1".into();
    expect_code(
        app.plans()
            .create_plan(as_user(&app.platform, negative))
            .await,
        Code::InvalidArgument,
    );
}
