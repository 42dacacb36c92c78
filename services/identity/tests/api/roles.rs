//! RoleService.

use tonic::Code;

use fusion_proto::identity::v1 as pb;
use prost_types::FieldMask;

use crate::helpers::{PASSWORD, TestApp, as_user, expect_code, violated_fields};

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
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(assigned.roles, ["site_manager"]);
    // Assigning twice is a no-op.
    app.roles()
        .assign_role(as_user(
            &admin,
            pb::AssignRoleRequest {
                role_id: role.id,
                user_id: user.id,
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
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(after.roles.is_empty());
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
        .list_permissions(as_user(&admin, pb::ListPermissionsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(catalogue.permissions.len(), 42);
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
    assert_eq!(listed.total_size, 7);
}
