//! The tenant's subscription takes effect: an inactive tenant gets no tokens, an ended
//! trial reads only, the plan's user limit holds, and built-in roles follow the
//! permission catalogue.

use prost_types::{FieldMask, Timestamp};
use tonic::Code;

use fusion_proto::identity::v1 as pb;

use crate::helpers::{PASSWORD, Session, TestApp, as_user, claims_of, expect_code, reason};

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// The platform operator sets billing fields of tenant `id`.
async fn set_billing(app: &TestApp, tenant: pb::Tenant, fields: &[&str]) {
    app.tenants()
        .update_tenant(as_user(
            &app.platform,
            pb::UpdateTenantRequest {
                tenant: Some(tenant),
                update_mask: mask(fields),
            },
        ))
        .await
        .expect("the platform changes a tenant's billing");
}

fn ago(seconds: i64) -> Timestamp {
    Timestamp {
        seconds: chrono::Utc::now().timestamp() - seconds,
        nanos: 0,
    }
}

fn new_user(email: &str) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        user: Some(pb::User {
            name: "Someone".into(),
            email: email.into(),
            ..Default::default()
        }),
        password: PASSWORD.into(),
        role_ids: Vec::new(),
        request_id: String::new(),
    }
}

async fn create_user(
    app: &TestApp,
    admin: &Session,
    email: &str,
) -> Result<pb::User, tonic::Status> {
    app.users()
        .create_user(as_user(admin, new_user(email)))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn an_inactive_tenant_gets_no_tokens_until_it_is_active_again() {
    let app = TestApp::spawn().await;
    let (tenant, admin) = app.create_tenant("acme").await;
    let (_, client_id, secret) = app
        .create_service_account(&admin, "integration", &["viewer"])
        .await;
    set_billing(
        &app,
        pb::Tenant {
            id: tenant.id,
            subscription_status: "inactive".into(),
            ..Default::default()
        },
        &["subscription_status"],
    )
    .await;
    let status = expect_code(
        app.login("admin@acme.test", PASSWORD).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "TENANT_INACTIVE");
    // Without the password the tenant's state stays hidden.
    let status = expect_code(
        app.login("admin@acme.test", "wrong password!").await,
        Code::Unauthenticated,
    );
    assert_eq!(reason(&status), "INVALID_CREDENTIALS");
    let refused = app
        .auth()
        .refresh(pb::RefreshRequest {
            refresh_token: admin.refresh_token.clone(),
        })
        .await;
    assert_eq!(
        reason(&expect_code(refused, Code::FailedPrecondition)),
        "TENANT_INACTIVE"
    );
    let refused = app.service_token(&client_id, &secret).await;
    assert_eq!(
        reason(&expect_code(refused, Code::FailedPrecondition)),
        "TENANT_INACTIVE"
    );

    set_billing(
        &app,
        pb::Tenant {
            id: tenant.id,
            subscription_status: "active".into(),
            ..Default::default()
        },
        &["subscription_status"],
    )
    .await;
    app.login("admin@acme.test", PASSWORD).await.unwrap();
    app.auth()
        .refresh(pb::RefreshRequest {
            refresh_token: admin.refresh_token.clone(),
        })
        .await
        .expect("the refused refresh did not use the token up");
    app.service_token(&client_id, &secret).await.unwrap();
}

#[tokio::test]
async fn a_tenant_whose_trial_has_ended_reads_but_does_not_write() {
    let app = TestApp::spawn().await;
    // create_tenant makes a trial tenant without an end: it writes.
    let (tenant, admin) = app.create_tenant("acme").await;
    assert!(claims_of(&admin.access_token).get("ro_at").is_none());
    create_user(&app, &admin, "before@acme.test").await.unwrap();

    set_billing(
        &app,
        pb::Tenant {
            id: tenant.id,
            trial_end_time: Some(ago(60)),
            ..Default::default()
        },
        &["trial_end_time"],
    )
    .await;
    let admin = app.login("admin@acme.test", PASSWORD).await.unwrap();
    assert!(claims_of(&admin.access_token)["ro_at"].is_u64());
    let users = app
        .users()
        .list_users(as_user(&admin, pb::ListUsersRequest::default()))
        .await
        .expect("reads still work")
        .into_inner()
        .users;
    assert_eq!(users.len(), 2);
    let status = expect_code(
        create_user(&app, &admin, "after@acme.test").await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "TENANT_READ_ONLY");
    let status = expect_code(
        app.roles()
            .create_role(as_user(
                &admin,
                pb::CreateRoleRequest {
                    role: Some(pb::Role {
                        name: "helpers".into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "TENANT_READ_ONLY");

    // Paying up (active) lifts it with the next token.
    set_billing(
        &app,
        pb::Tenant {
            id: tenant.id,
            subscription_status: "active".into(),
            ..Default::default()
        },
        &["subscription_status"],
    )
    .await;
    let admin = app.login("admin@acme.test", PASSWORD).await.unwrap();
    assert!(claims_of(&admin.access_token).get("ro_at").is_none());
    create_user(&app, &admin, "after@acme.test").await.unwrap();
}

#[tokio::test]
async fn the_plans_user_limit_holds_on_create_undelete_and_activate() {
    let app = TestApp::spawn().await;
    let (tenant, admin) = app.create_tenant("acme").await;
    let plan = app
        .plans()
        .create_plan(as_user(
            &app.platform,
            pb::CreatePlanRequest {
                plan: Some(pb::Plan {
                    code: "duo".into(),
                    name: "Duo".into(),
                    monthly_price: "10.00".into(),
                    currency_code: "AUD".into(),
                    max_user_count: 2,
                    active: true,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    set_billing(
        &app,
        pb::Tenant {
            id: tenant.id,
            plan_id: plan.id,
            ..Default::default()
        },
        &["plan_id"],
    )
    .await;
    // The admin and one more.
    let first = create_user(&app, &admin, "one@acme.test").await.unwrap();
    let status = expect_code(
        create_user(&app, &admin, "two@acme.test").await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "USER_LIMIT_REACHED");
    // Service accounts are not users of the plan.
    app.create_service_account(&admin, "integration", &["viewer"])
        .await;

    let users = app.users();
    users
        .clone()
        .deactivate_user(as_user(
            &admin,
            pb::DeactivateUserRequest {
                id: first.id,
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let second = create_user(&app, &admin, "two@acme.test").await.unwrap();
    let activate = |id| {
        let mut users = users.clone();
        let admin = admin.clone();
        async move {
            users
                .activate_user(as_user(
                    &admin,
                    pb::ActivateUserRequest {
                        id,
                        request_id: String::new(),
                    },
                ))
                .await
        }
    };
    let status = expect_code(activate(first.id).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "USER_LIMIT_REACHED");
    // Activating someone already active takes no new place.
    activate(second.id).await.expect("already active");

    users
        .clone()
        .delete_user(as_user(
            &admin,
            pb::DeleteUserRequest {
                id: second.id,
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    activate(first.id).await.expect("a place was freed");
    let status = expect_code(
        users
            .clone()
            .undelete_user(as_user(&admin, pb::UndeleteUserRequest { id: second.id }))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "USER_LIMIT_REACHED");
}

#[tokio::test]
async fn concurrent_creates_never_take_more_places_than_the_plan_has() {
    let app = TestApp::spawn().await;
    let (tenant, admin) = app.create_tenant("acme").await;
    let plan = app
        .plans()
        .create_plan(as_user(
            &app.platform,
            pb::CreatePlanRequest {
                plan: Some(pb::Plan {
                    code: "team".into(),
                    name: "Team".into(),
                    monthly_price: "10.00".into(),
                    currency_code: "AUD".into(),
                    max_user_count: 3,
                    active: true,
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    set_billing(
        &app,
        pb::Tenant {
            id: tenant.id,
            plan_id: plan.id,
            ..Default::default()
        },
        &["plan_id"],
    )
    .await;
    let creates = (0..6).map(|i| {
        let (app, admin) = (&app, &admin);
        async move { create_user(app, admin, &format!("u{i}@acme.test")).await }
    });
    let results = futures::future::join_all(creates).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 2, "the admin and two more: {results:?}");
    for refused in results.into_iter().filter_map(Result::err) {
        assert_eq!(reason(&refused), "USER_LIMIT_REACHED");
    }
}

#[tokio::test]
async fn built_in_roles_of_older_tenants_get_the_permissions_the_catalogue_added() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let role_id = app.role_ids(&admin, &["sales_agent"]).await[0];
    // As acme was before `crm.leads.write` joined the sales agent's role: the role
    // lacks it and it has never been rolled out. Its admin has also taken
    // `crm.notes.write` away, after it was rolled out.
    let superuser = sqlx::PgPool::connect(&app.db.admin_url).await.unwrap();
    sqlx::query(
        "UPDATE identity.roles SET permissions = array_remove(array_remove(permissions,
             'crm.leads.write'), 'crm.notes.write') WHERE id = $1",
    )
    .bind(role_id)
    .execute(&superuser)
    .await
    .unwrap();
    sqlx::query(
        "DELETE FROM identity.built_in_grants
         WHERE role_name = 'sales_agent' AND permission = 'crm.leads.write'",
    )
    .execute(&superuser)
    .await
    .unwrap();
    let permissions = || async {
        app.roles()
            .get_role(as_user(&admin, pb::GetRoleRequest { id: role_id }))
            .await
            .unwrap()
            .into_inner()
            .permissions
    };
    let before = permissions().await;
    assert!(!before.contains(&"crm.leads.write".to_owned()));

    let changed = fusion_identity::bootstrap::reconcile_built_in_roles(&app.app.state().db)
        .await
        .unwrap();
    assert_eq!(changed, 1, "acme's sales agents, in acme alone");
    let after = permissions().await;
    assert!(after.contains(&"crm.leads.write".to_owned()), "{after:?}");
    assert!(
        !after.contains(&"crm.notes.write".to_owned()),
        "what the admin took away stays away"
    );
    assert!(after.windows(2).all(|w| w[0] < w[1]), "{after:?}");
    // Rolled out once: a second run changes nothing.
    let again = fusion_identity::bootstrap::reconcile_built_in_roles(&app.app.state().db)
        .await
        .unwrap();
    assert_eq!(again, 0);
}
