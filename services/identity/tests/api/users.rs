//! UserService.

use tonic::Code;

use fusion_proto::identity::v1 as pb;
use prost_types::FieldMask;

use crate::helpers::{PASSWORD, TestApp, as_user, expect_code, reason, violated_fields};

fn new_user(email: &str) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        user: Some(pb::User {
            name: "Sam Seller".into(),
            email: email.into(),
            phone: "+61 400 000 000".into(),
            ..Default::default()
        }),
        password: PASSWORD.into(),
        role_ids: vec![],
        request_id: String::new(),
    }
}

#[tokio::test]
async fn a_user_is_created_with_roles_and_logs_in_only_while_not_deleted() {
    let app = TestApp::spawn().await;
    let (acme, admin) = app.create_tenant("acme").await;
    let agent = app.role_ids(&admin, &["sales_agent"]).await;
    let user = app
        .users()
        .create_user(as_user(
            &admin,
            pb::CreateUserRequest {
                role_ids: agent.clone(),
                ..new_user("sam@acme.test")
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (user.tenant_id, user.active, user.role_names.clone()),
        (acme.id, true, vec!["sales_agent".to_owned()])
    );
    assert_eq!(user.role_ids, agent);
    let updated = app
        .users()
        .update_user(as_user(
            &admin,
            pb::UpdateUserRequest {
                user: Some(pb::User {
                    id: user.id,
                    name: "Samantha Seller".into(),
                    etag: user.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["name".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.name.as_str(), updated.phone.as_str()),
        ("Samantha Seller", "+61 400 000 000")
    );
    let deleted = app
        .users()
        .delete_user(as_user(
            &admin,
            pb::DeleteUserRequest {
                id: user.id,
                etag: updated.etag,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.delete_time.is_some());
    // AIP-164: Get still finds the soft-deleted user, with its delete_time.
    let found = app
        .users()
        .get_user(as_user(&admin, pb::GetUserRequest { id: user.id }))
        .await
        .unwrap()
        .into_inner();
    assert!(found.delete_time.is_some(), "{found:?}");
    expect_code(
        app.login("sam@acme.test", PASSWORD).await,
        Code::Unauthenticated,
    );
    // Get round trip, masks, and hiding deleted rows from List: the conformance suite.
    app.users()
        .undelete_user(as_user(&admin, pb::UndeleteUserRequest { id: user.id }))
        .await
        .unwrap();
    app.login("sam@acme.test", PASSWORD)
        .await
        .expect("restored user logs in");
}

#[tokio::test]
async fn user_fields_are_validated_and_emails_unique_across_tenants() {
    let app = TestApp::spawn().await;
    let (_, acme) = app.create_tenant("acme").await;
    let (_, globex) = app.create_tenant("globex").await;
    let status = expect_code(
        app.users()
            .create_user(as_user(
                &acme,
                pb::CreateUserRequest {
                    user: Some(pb::User {
                        name: String::new(),
                        email: "not-an-email".into(),
                        phone: "9".repeat(51),
                        ..Default::default()
                    }),
                    password: "short".into(),
                    role_ids: vec![],
                    request_id: String::new(),
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        ["user.name", "user.email", "password", "user.phone"]
    );
    // Roles are referenced by id: an unknown id, another tenant's role and a
    // non-positive id are all INVALID_ARGUMENT on `role_ids`, and nothing is created.
    let globex_admin_role = app.role_ids(&globex, &["admin"]).await;
    for role_ids in [vec![999_999], globex_admin_role, vec![0]] {
        let status = expect_code(
            app.users()
                .create_user(as_user(
                    &acme,
                    pb::CreateUserRequest {
                        role_ids: role_ids.clone(),
                        ..new_user("x@acme.test")
                    },
                ))
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["role_ids"], "{role_ids:?}");
    }
    expect_code(
        app.login("x@acme.test", PASSWORD).await,
        Code::Unauthenticated,
    );
    app.users()
        .create_user(as_user(&acme, new_user("sam@acme.test")))
        .await
        .unwrap();
    expect_code(
        app.users()
            .create_user(as_user(&globex, new_user("SAM@acme.test")))
            .await,
        Code::AlreadyExists,
    );
}

#[tokio::test]
async fn another_tenants_user_is_not_found_for_the_custom_methods() {
    let app = TestApp::spawn().await;
    let (_, acme) = app.create_tenant("acme").await;
    let (_, globex) = app.create_tenant("globex").await;
    let theirs = app
        .users()
        .create_user(as_user(&globex, new_user("g@globex.test")))
        .await
        .unwrap()
        .into_inner();
    let users = app.users();
    // Get, Update, Delete and Undelete: the conformance suite (another_tenants_resource_is_not_found).
    let id = theirs.id;
    expect_code(
        users
            .clone()
            .activate_user(as_user(
                &acme,
                pb::ActivateUserRequest {
                    id,
                    ..Default::default()
                },
            ))
            .await,
        Code::NotFound,
    );
    expect_code(
        users
            .clone()
            .deactivate_user(as_user(
                &acme,
                pb::DeactivateUserRequest {
                    id,
                    ..Default::default()
                },
            ))
            .await,
        Code::NotFound,
    );
    expect_code(
        users
            .clone()
            .set_user_password(as_user(
                &acme,
                pb::SetUserPasswordRequest {
                    id,
                    password: PASSWORD.into(),
                },
            ))
            .await,
        Code::NotFound,
    );
    let listed = users
        .clone()
        .list_users(as_user(&acme, pb::ListUsersRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.users.iter().all(|u| u.tenant_id == acme.tenant_id));
    assert_eq!(listed.total_size, 1);
}

#[tokio::test]
async fn a_viewer_can_read_users_but_not_change_them() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let (_, viewer) = app
        .create_user(&admin, "viewer@acme.test", &["viewer"])
        .await;
    app.users()
        .list_users(as_user(&viewer, pb::ListUsersRequest::default()))
        .await
        .unwrap();
    let status = expect_code(
        app.users()
            .create_user(as_user(&viewer, new_user("x@acme.test")))
            .await,
        Code::PermissionDenied,
    );
    assert_eq!(reason(&status), "PERMISSION_DENIED");
}

#[tokio::test]
async fn deactivation_and_a_new_password_revoke_sessions() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let (user, session) = app
        .create_user(&admin, "sam@acme.test", &["sales_agent"])
        .await;
    app.users()
        .set_user_password(as_user(
            &admin,
            pb::SetUserPasswordRequest {
                id: user.id,
                password: "a brand new password".into(),
            },
        ))
        .await
        .unwrap();
    expect_code(
        app.auth()
            .refresh(pb::RefreshRequest {
                refresh_token: session.refresh_token,
            })
            .await,
        Code::Unauthenticated,
    );
    expect_code(
        app.login("sam@acme.test", PASSWORD).await,
        Code::Unauthenticated,
    );
    app.login("sam@acme.test", "a brand new password")
        .await
        .unwrap();
    expect_code(
        app.users()
            .deactivate_user(as_user(
                &admin,
                pb::DeactivateUserRequest {
                    id: admin.user_id,
                    ..Default::default()
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    expect_code(
        app.users()
            .delete_user(as_user(
                &admin,
                pb::DeleteUserRequest {
                    id: admin.user_id,
                    etag: String::new(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
}

#[tokio::test]
async fn list_users_filters_orders_and_shows_role_names() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let agent = app.role_ids(&admin, &["sales_agent"]).await;
    for i in 0..5 {
        app.users()
            .create_user(as_user(
                &admin,
                pb::CreateUserRequest {
                    role_ids: agent.clone(),
                    ..new_user(&format!("agent{i}@acme.test"))
                },
            ))
            .await
            .unwrap();
    }
    let page = app
        .users()
        .list_users(as_user(
            &admin,
            pb::ListUsersRequest {
                page_size: 2,
                filter: r#"email:"agent""#.into(),
                order_by: "email desc".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.total_size, 5);
    assert_eq!(
        page.users
            .iter()
            .map(|u| u.email.as_str())
            .collect::<Vec<_>>(),
        ["agent4@acme.test", "agent3@acme.test"]
    );
    assert!(
        page.users
            .iter()
            .all(|u| u.role_names == ["sales_agent"] && u.role_ids == agent)
    );
}

#[tokio::test]
async fn a_deleted_users_purge_time_follows_the_configured_retention() {
    let app = TestApp::spawn_with(|c| {
        c.purge_retention = std::time::Duration::from_secs(3 * 86_400);
    })
    .await;
    let (_, admin) = app.create_tenant("acme").await;
    let user = app
        .users()
        .create_user(as_user(&admin, new_user("sam@acme.test")))
        .await
        .unwrap()
        .into_inner();
    let deleted = app
        .users()
        .delete_user(as_user(
            &admin,
            pb::DeleteUserRequest {
                id: user.id,
                etag: user.etag,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let (deleted_at, purge_at) = (deleted.delete_time.unwrap(), deleted.purge_time.unwrap());
    assert_eq!(purge_at.seconds - deleted_at.seconds, 3 * 86_400);
    assert_eq!(purge_at.nanos, deleted_at.nanos);
}
