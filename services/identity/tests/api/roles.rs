//! RoleService.

use tonic::Code;

use fusion_proto::identity::v1 as pb;
use prost_types::FieldMask;

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, as_user, claims_of, expect_code, reason, violated_fields};

fn custom(name: &str, perms: &[&str]) -> pb::CreateRoleRequest {
    pb::CreateRoleRequest {
        role: Some(pb::Role {
            name: name.into(),
            description: "site team".into(),
            permissions: perms.iter().map(|p| (*p).to_owned()).collect(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn custom_roles_grant_their_permissions_at_the_next_login() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let role = app
        .roles()
        .create_role(as_user(
            &admin,
            custom(
                "site_manager",
                &[
                    "property.lots.write",
                    "property.lots.read",
                    "property.lots.read",
                ],
            ),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        role.permissions,
        ["property.lots.read", "property.lots.write"]
    );
    assert!(!role.built_in);
    let (user, _) = app.create_user(&admin, "site@acme.test", &[]).await;
    let assigned = app
        .roles()
        .assign_role(as_user(
            &admin,
            pb::AssignRoleRequest {
                role_id: role.id,
                user_id: user.id,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(assigned.role_names, ["site_manager"]);
    assert_eq!(assigned.role_ids, [role.id]);
    // Assigning twice is a no-op.
    app.roles()
        .assign_role(as_user(
            &admin,
            pb::AssignRoleRequest {
                role_id: role.id,
                user_id: user.id,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let session = app.login("site@acme.test", PASSWORD).await.unwrap();
    let claims: serde_json::Value = {
        use base64::Engine as _;
        let payload = session.access_token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(
        claims["perms"],
        serde_json::json!(["property.lots.read", "property.lots.write"])
    );
    let after = app
        .roles()
        .unassign_role(as_user(
            &admin,
            pb::UnassignRoleRequest {
                role_id: role.id,
                user_id: user.id,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(after.role_names.is_empty() && after.role_ids.is_empty());
}

#[tokio::test]
async fn role_names_and_permissions_are_validated() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let status = expect_code(
        app.roles()
            .create_role(as_user(&admin, custom("Bad Name", &["crm.leads.fly"])))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["role.name", "role.permissions"]);
    assert!(status.message().contains("role.permissions"));
    expect_code(
        app.roles()
            .create_role(as_user(&admin, custom("viewer", &[])))
            .await,
        Code::AlreadyExists,
    );
    let catalogue = app
        .roles()
        .list_permissions(as_user(&admin, pb::ListPermissionsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(catalogue.permissions.len(), 44);
    assert_eq!(catalogue.total_size, 44);
    assert!(catalogue.next_page_token.is_empty());
}

#[tokio::test]
async fn built_in_roles_cannot_be_renamed_or_deleted_and_the_last_admin_stays() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let roles = app
        .roles()
        .list_roles(as_user(
            &admin,
            pb::ListRolesRequest {
                filter: "name = admin".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let admin_role = roles.roles[0].clone();
    expect_code(
        app.roles()
            .update_role(as_user(
                &admin,
                pb::UpdateRoleRequest {
                    role: Some(pb::Role {
                        id: admin_role.id,
                        name: "boss".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["name".into()],
                    }),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    expect_code(
        app.roles()
            .delete_role(as_user(
                &admin,
                pb::DeleteRoleRequest {
                    id: admin_role.id,
                    etag: String::new(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    expect_code(
        app.roles()
            .unassign_role(as_user(
                &admin,
                pb::UnassignRoleRequest {
                    role_id: admin_role.id,
                    user_id: admin.user_id,
                    ..Default::default()
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
}

#[tokio::test]
async fn custom_roles_update_delete_and_undelete() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let role = app
        .roles()
        .create_role(as_user(
            &admin,
            custom("site_manager", &["property.lots.read"]),
        ))
        .await
        .unwrap()
        .into_inner();
    let updated = app
        .roles()
        .update_role(as_user(
            &admin,
            pb::UpdateRoleRequest {
                role: Some(pb::Role {
                    id: role.id,
                    permissions: vec!["property.lots.write".into()],
                    etag: role.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["permissions".into()],
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.permissions, ["property.lots.write"]);
    assert_eq!(updated.description, "site team");
    app.roles()
        .delete_role(as_user(
            &admin,
            pb::DeleteRoleRequest {
                id: role.id,
                etag: updated.etag,
            },
        ))
        .await
        .unwrap();
    // AIP-164: Get still finds the soft-deleted role, with its delete_time.
    let found = app
        .roles()
        .get_role(as_user(&admin, pb::GetRoleRequest { id: role.id }))
        .await
        .unwrap()
        .into_inner();
    assert!(found.delete_time.is_some(), "{found:?}");
    app.roles()
        .undelete_role(as_user(&admin, pb::UndeleteRoleRequest { id: role.id }))
        .await
        .unwrap();
    expect_code(
        app.roles()
            .undelete_role(as_user(&admin, pb::UndeleteRoleRequest { id: role.id }))
            .await,
        Code::AlreadyExists,
    );
}

#[tokio::test]
async fn another_tenants_roles_and_users_cannot_be_assigned() {
    let app = TestApp::spawn().await;
    let (_, acme) = app.create_tenant("acme").await;
    let (_, globex) = app.create_tenant("globex").await;
    let theirs = app
        .roles()
        .create_role(as_user(&globex, custom("site_manager", &[])))
        .await
        .unwrap()
        .into_inner();
    let mine = app
        .roles()
        .create_role(as_user(&acme, custom("site_manager", &[])))
        .await
        .unwrap()
        .into_inner();
    // Get, Update, Delete and Undelete: the conformance suite (another_tenants_resource_is_not_found).
    let id = theirs.id;
    let roles = app.roles();
    expect_code(
        roles
            .clone()
            .assign_role(as_user(
                &acme,
                pb::AssignRoleRequest {
                    role_id: id,
                    user_id: acme.user_id,
                    ..Default::default()
                },
            ))
            .await,
        Code::NotFound,
    );
    // My role, their user.
    expect_code(
        roles
            .clone()
            .assign_role(as_user(
                &acme,
                pb::AssignRoleRequest {
                    role_id: mine.id,
                    user_id: globex.user_id,
                    ..Default::default()
                },
            ))
            .await,
        Code::NotFound,
    );
    expect_code(
        roles
            .clone()
            .unassign_role(as_user(
                &acme,
                pb::UnassignRoleRequest {
                    role_id: id,
                    user_id: globex.user_id,
                    ..Default::default()
                },
            ))
            .await,
        Code::NotFound,
    );
    let listed = roles
        .clone()
        .list_roles(as_user(&acme, pb::ListRolesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.total_size, 8,
        "seven built-in roles and the custom one"
    );
}

#[tokio::test]
async fn renaming_a_role_changes_nobodys_access_and_tokens_show_the_new_name() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let role = app
        .roles()
        .create_role(as_user(
            &admin,
            custom("user_reader", &["identity.users.read"]),
        ))
        .await
        .unwrap()
        .into_inner();
    let (user, before) = app
        .create_user(&admin, "reader@acme.test", &["user_reader"])
        .await;
    assert_eq!(user.role_ids, [role.id]);
    assert_eq!(
        claims_of(&before.access_token)["roles"],
        json!(["user_reader"])
    );
    let renamed = app
        .roles()
        .update_role(as_user(
            &admin,
            pb::UpdateRoleRequest {
                role: Some(pb::Role {
                    id: role.id,
                    name: "people_reader".into(),
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
        (renamed.id, renamed.name.as_str()),
        (role.id, "people_reader")
    );
    // A fresh login: the same role, by id, under its new name, with its permissions.
    let after = app.login("reader@acme.test", PASSWORD).await.unwrap();
    let claims = claims_of(&after.access_token);
    assert_eq!(claims["roles"], json!(["people_reader"]));
    assert_eq!(claims["perms"], json!(["identity.users.read"]));
    let me = app
        .users()
        .get_user(as_user(&after, pb::GetUserRequest { id: user.id }))
        .await
        .expect("the renamed role still lets the user read users")
        .into_inner();
    assert_eq!(
        (me.role_ids, me.role_names),
        (vec![role.id], vec!["people_reader".to_owned()])
    );
    // A refreshed token too.
    let refreshed = app
        .auth()
        .refresh(pb::RefreshRequest {
            refresh_token: before.refresh_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        claims_of(&refreshed.access_token)["roles"],
        json!(["people_reader"])
    );
}

#[tokio::test]
async fn the_platform_role_is_granted_neither_by_assign_role_nor_by_create_user() {
    let app = TestApp::spawn().await;
    let operator = &app.platform;
    let platform_role = app.role_ids(operator, &["platform_admin"]).await;
    let (user, _) = app.create_user(operator, "helper@platform.test", &[]).await;
    let status = expect_code(
        app.roles()
            .assign_role(as_user(
                operator,
                pb::AssignRoleRequest {
                    role_id: platform_role[0],
                    user_id: user.id,
                    ..Default::default()
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "BUILT_IN_ROLE");
    // CreateUser refuses the same role the same way, and creates nobody.
    let status = expect_code(
        app.users()
            .create_user(as_user(
                operator,
                pb::CreateUserRequest {
                    user: Some(pb::User {
                        name: "Sneaky".into(),
                        email: "sneaky@platform.test".into(),
                        ..Default::default()
                    }),
                    password: PASSWORD.into(),
                    role_ids: platform_role.clone(),
                    request_id: String::new(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "BUILT_IN_ROLE");
    assert_eq!(
        status.message(),
        "the platform role is assigned by bootstrap only"
    );
    expect_code(
        app.login("sneaky@platform.test", PASSWORD).await,
        Code::Unauthenticated,
    );
    // Any other role of the platform tenant is granted as usual.
    let (viewer, session) = app
        .create_user(operator, "viewer@platform.test", &["viewer"])
        .await;
    assert_eq!(viewer.role_names, ["viewer"]);
    assert_eq!(claims_of(&session.access_token)["roles"], json!(["viewer"]));
}

#[tokio::test]
async fn list_permissions_pages_through_the_whole_catalogue() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let list = |page_size: i32, page_token: String| {
        let mut roles = app.roles();
        let req = as_user(
            &admin,
            pb::ListPermissionsRequest {
                page_size,
                page_token,
            },
        );
        async move { roles.list_permissions(req).await }
    };
    let everything = list(0, String::new()).await.unwrap().into_inner();
    assert_eq!(everything.permissions.len(), 44);
    let (mut seen, mut token, mut pages) = (Vec::new(), String::new(), 0);
    let mut second_token = String::new();
    loop {
        let page = list(5, token).await.unwrap().into_inner();
        assert_eq!(page.total_size, 44);
        assert!(page.permissions.len() <= 5);
        seen.extend(page.permissions);
        pages += 1;
        if pages == 1 {
            second_token = page.next_page_token.clone();
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 9);
    assert_eq!(seen, everything.permissions);
    // A token edited by the client, a token of another List, and a negative page size
    // are INVALID_ARGUMENT.
    let (payload, tag) = second_token.split_once('.').unwrap();
    let first = if payload.starts_with('e') { "f" } else { "e" };
    let tampered = format!("{first}{}.{tag}", &payload[1..]);
    assert_ne!(tampered, second_token);
    let roles_token = app
        .roles()
        .list_roles(as_user(
            &admin,
            pb::ListRolesRequest {
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    for bad in [tampered, roles_token, "garbage".to_owned()] {
        let status = expect_code(list(5, bad).await, Code::InvalidArgument);
        assert_eq!(violated_fields(&status), ["page_token"]);
    }
    let status = expect_code(list(-1, String::new()).await, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["page_size"]);
}

/// AIP-155 on identity's custom methods: a retry with the request id returns the first
/// result without acting again, even after the user changed since; the same id with
/// another request is refused.
#[tokio::test]
async fn role_and_activation_changes_replay_their_request_id() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let role = app
        .roles()
        .create_role(as_user(
            &admin,
            custom("site_manager", &["property.lots.read"]),
        ))
        .await
        .unwrap()
        .into_inner();
    let (user, _) = app.create_user(&admin, "site@acme.test", &[]).await;
    let held = async |app: &TestApp| {
        let request = as_user(&admin, pb::GetUserRequest { id: user.id });
        app.users().get_user(request).await.unwrap().into_inner()
    };
    let assign = pb::AssignRoleRequest {
        role_id: role.id,
        user_id: user.id,
        request_id: "0b6f1b9e-5c55-4a39-9d1f-0a3c2f1e7a10".into(),
    };
    let first = app
        .roles()
        .assign_role(as_user(&admin, assign.clone()))
        .await
        .unwrap();
    assert_eq!(first.get_ref().role_ids, [role.id]);
    app.roles()
        .unassign_role(as_user(
            &admin,
            pb::UnassignRoleRequest {
                role_id: role.id,
                user_id: user.id,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    // The retry answers as the first call did and grants nothing again.
    let retried = app
        .roles()
        .assign_role(as_user(&admin, assign.clone()))
        .await
        .unwrap();
    assert_eq!(retried.get_ref(), first.get_ref());
    assert!(
        held(&app).await.role_ids.is_empty(),
        "the retry acted again"
    );
    let (other, _) = app.create_user(&admin, "other@acme.test", &[]).await;
    let reused = pb::AssignRoleRequest {
        user_id: other.id,
        ..assign
    };
    let status = expect_code(
        app.roles().assign_role(as_user(&admin, reused)).await,
        Code::InvalidArgument,
    );
    assert_eq!(reason(&status), "REQUEST_ID_REUSED");
    assert_eq!(violated_fields(&status), ["request_id"]);

    let deactivate = pb::DeactivateUserRequest {
        id: user.id,
        request_id: "6f7d2c1a-8e4b-4f0a-b3c2-9d8e7f6a5b41".into(),
    };
    let first = app
        .users()
        .deactivate_user(as_user(&admin, deactivate.clone()))
        .await
        .unwrap();
    assert!(!first.get_ref().active);
    app.users()
        .activate_user(as_user(
            &admin,
            pb::ActivateUserRequest {
                id: user.id,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let retried = app
        .users()
        .deactivate_user(as_user(&admin, deactivate))
        .await
        .unwrap();
    assert_eq!(retried.get_ref().etag, first.get_ref().etag);
    assert!(
        held(&app).await.active,
        "the retried deactivation acted again"
    );
    let status = expect_code(
        app.users()
            .deactivate_user(as_user(
                &admin,
                pb::DeactivateUserRequest {
                    id: user.id,
                    request_id: "not-a-uuid".into(),
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["request_id"]);
}

/// Taking access away needs only the method's permission, but never leaves a tenant
/// without an active admin: a user manager cannot deactivate or delete the last one,
/// and can once there is another.
#[tokio::test]
async fn the_last_active_admin_is_neither_deactivated_nor_deleted() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let managers = app
        .roles()
        .create_role(as_user(
            &admin,
            pb::CreateRoleRequest {
                role: Some(pb::Role {
                    name: "user_managers".into(),
                    permissions: vec!["identity.users.read".into(), "identity.users.write".into()],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("role created")
        .into_inner();
    let (_, manager) = app
        .create_user(&admin, "manager@acme.test", &[&managers.name])
        .await;
    let deactivate = |id: i64| {
        let mut users = app.users();
        let req = as_user(
            &manager,
            pb::DeactivateUserRequest {
                id,
                ..Default::default()
            },
        );
        async move { users.deactivate_user(req).await }
    };
    let delete = |id: i64| {
        let mut users = app.users();
        let req = as_user(
            &manager,
            pb::DeleteUserRequest {
                id,
                etag: String::new(),
            },
        );
        async move { users.delete_user(req).await }
    };
    let refused = deactivate(admin.user_id).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), "LAST_ADMIN");
    let refused = delete(admin.user_id).await.unwrap_err();
    assert_eq!(reason(&refused), "LAST_ADMIN");

    // With a second admin, the first may go.
    let (second, _) = app
        .create_user(&admin, "second-admin@acme.test", &["admin"])
        .await;
    deactivate(admin.user_id)
        .await
        .expect("another admin remains");
    let refused = delete(second.id).await.unwrap_err();
    assert_eq!(reason(&refused), "LAST_ADMIN", "the remaining admin stays");
}
