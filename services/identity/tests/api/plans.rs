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
            monthly_price: "99.00".into(),
            currency_code: "AUD".into(),
            max_user_count: 5,
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
    assert_eq!(
        (plan.monthly_price.as_str(), plan.max_user_count),
        ("99.00", 5)
    );
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
                    monthly_price: "129.50".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["monthly_price".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.monthly_price.as_str(), updated.name.as_str()),
        ("129.50", "Starter")
    );
    let listed = app
        .plans()
        .list_plans(as_user(
            &admin,
            pb::ListPlansRequest {
                filter: "monthly_price > 100".into(),
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
    plan.monthly_price = "12.345".into();
    plan.currency_code = "dollars".into();
    plan.max_user_count = -1;
    let status = expect_code(
        app.plans().create_plan(as_user(&app.platform, bad)).await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        [
            "plan.code",
            "plan.monthly_price",
            "plan.currency_code",
            "plan.max_user_count"
        ]
    );
    let mut negative = starter();
    negative.plan.as_mut().unwrap().monthly_price = "-1".into();
    expect_code(
        app.plans()
            .create_plan(as_user(&app.platform, negative))
            .await,
        Code::InvalidArgument,
    );
}

#[tokio::test]
async fn a_currency_code_must_be_an_iso_4217_code_in_use_and_the_api_names_are_the_new_ones() {
    let app = TestApp::spawn().await;
    // Three upper-case letters are not enough: the code must be on the ISO 4217 list.
    for code in ["ABC", "XXX", "aud"] {
        let mut bad = starter();
        bad.plan.as_mut().unwrap().currency_code = code.into();
        let status = expect_code(
            app.plans().create_plan(as_user(&app.platform, bad)).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["plan.currency_code"], "{code}");
    }
    let plan = app
        .plans()
        .create_plan(as_user(&app.platform, starter()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plan.currency_code, "AUD");
    let status = expect_code(
        app.plans()
            .update_plan(as_user(
                &app.platform,
                pb::UpdatePlanRequest {
                    plan: Some(pb::Plan {
                        id: plan.id,
                        currency_code: "ZZZ".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["currency_code".into()],
                    }),
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["plan.currency_code"]);
    let nzd = app
        .plans()
        .update_plan(as_user(
            &app.platform,
            pb::UpdatePlanRequest {
                plan: Some(pb::Plan {
                    id: plan.id,
                    currency_code: "NZD".into(),
                    max_user_count: 9,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["currency_code".into(), "max_user_count".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((nzd.currency_code.as_str(), nzd.max_user_count), ("NZD", 9));
    // Filters and orderings use the API's names; the old ones are refused.
    let listed = app
        .plans()
        .list_plans(as_user(
            &app.platform,
            pb::ListPlansRequest {
                filter: r#"currency_code = "NZD" AND max_user_count >= 9 AND monthly_price < 100"#
                    .into(),
                order_by: "monthly_price desc".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.plans.len(), 1);
    for (filter, order_by) in [
        (r#"currency = "NZD""#, ""),
        ("price_monthly < 100", ""),
        ("max_users >= 9", ""),
        ("", "price_monthly"),
    ] {
        let status = expect_code(
            app.plans()
                .list_plans(as_user(
                    &app.platform,
                    pb::ListPlansRequest {
                        filter: filter.into(),
                        order_by: order_by.into(),
                        ..Default::default()
                    },
                ))
                .await,
            Code::InvalidArgument,
        );
        let field = if filter.is_empty() {
            "order_by"
        } else {
            "filter"
        };
        assert_eq!(violated_fields(&status), [field], "{filter}{order_by}");
    }
}
