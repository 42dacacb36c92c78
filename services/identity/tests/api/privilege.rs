//! The permission rule on identity (docs/SECURITY.md, "Permissions"): every RPC refuses
//! a caller lacking any permission it declares, writing nothing (the generated walk),
//! and no path grants, takes away or changes more than the caller holds.

use sqlx::Connection as _;
use tonic::Code;

use fusion_identity::auth::keys::KeyRing;
use fusion_identity::domain::permissions::tenant_permissions;
use fusion_proto::identity::v1 as pb;
use fusion_tenancy::{Claims, JwtConfig};
use fusion_testkit::privilege::{self, Walk, changed_tables, denied_permission, fingerprint};

use crate::helpers::{PASSWORD, Session, TestApp, as_user, expect_code, reason};

#[tokio::test]
async fn every_identity_rpc_refuses_a_caller_lacking_each_permission_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let keys = KeyRing::load_or_create(&app.app.state().db).await.unwrap();
    let mint = |perms: &[&str]| {
        keys.signer().sign(&Claims::new(
            &JwtConfig::default(),
            admin.tenant_id,
            admin.user_id,
            vec!["walk".into()],
            perms.iter().map(|p| (*p).to_owned()).collect(),
            std::time::Duration::from_secs(600),
        ))
    };
    privilege::walk(&Walk {
        package: fusion_proto::identity::v1::PACKAGE,
        policy: &fusion_identity::grpc::policy(),
        channel: app.channel.clone(),
        tenant_id: admin.tenant_id,
        catalogue: &tenant_permissions(),
        mint: &mint,
        admin_url: &app.db.admin_url,
    })
    .await;
}

/// A custom role of `admin`'s tenant holding `permissions`: its id.
async fn custom_role(app: &TestApp, admin: &Session, name: &str, permissions: &[&str]) -> i64 {
    app.roles()
        .create_role(as_user(
            admin,
            pb::CreateRoleRequest {
                role: Some(pb::Role {
                    name: name.into(),
                    permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("role created")
        .into_inner()
        .id
}

/// A user of `admin`'s tenant holding only a new custom role `name` of `permissions`,
/// logged in.
async fn holder_of(app: &TestApp, admin: &Session, name: &str, permissions: &[&str]) -> Session {
    custom_role(app, admin, name, permissions).await;
    app.create_user(admin, &format!("{name}@acme.test"), &[name])
        .await
        .1
}

/// Every row of the test database, to compare before and after a refused call.
async fn rows(app: &TestApp) -> std::collections::BTreeMap<String, (i64, String)> {
    let mut db = sqlx::PgConnection::connect(&app.db.admin_url)
        .await
        .unwrap();
    fingerprint(&mut db).await
}

#[track_caller]
fn assert_denied<T: std::fmt::Debug>(result: Result<T, tonic::Status>, permission: &str) {
    let status = expect_code(result, Code::PermissionDenied);
    assert_eq!(denied_permission(&status).as_deref(), Some(permission));
}

fn new_user(email: &str, role_ids: Vec<i64>) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        user: Some(pb::User {
            name: "New User".into(),
            email: email.into(),
            ..Default::default()
        }),
        password: PASSWORD.into(),
        role_ids,
        request_id: String::new(),
    }
}

#[tokio::test]
async fn create_user_with_roles_needs_the_permission_assign_role_needs() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let hr = holder_of(&app, &admin, "hr", &["identity.users.write"]).await;
    let admin_role = app.role_ids(&admin, &["admin"]).await;
    let before = rows(&app).await;
    let made = app
        .users()
        .create_user(as_user(&hr, new_user("mole@acme.test", admin_role.clone())))
        .await;
    assert_denied(made, "identity.roles.write");
    assert_eq!(
        changed_tables(&before, &rows(&app).await),
        Vec::<String>::new()
    );
    // Without roles, users.write is all CreateUser needs.
    app.users()
        .create_user(as_user(&hr, new_user("plain@acme.test", vec![])))
        .await
        .expect("a user without roles is created");
}

#[tokio::test]
async fn nobody_grants_a_role_carrying_permissions_they_lack() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let manager = holder_of(
        &app,
        &admin,
        "role_manager",
        &[
            "identity.roles.read",
            "identity.roles.write",
            "identity.users.read",
            "identity.users.write",
        ],
    )
    .await;
    let admin_role = app.role_ids(&admin, &["admin"]).await[0];
    let before = rows(&app).await;
    // Making themselves admin, directly or through a new user.
    let assigned = app
        .roles()
        .assign_role(as_user(
            &manager,
            pb::AssignRoleRequest {
                role_id: admin_role,
                user_id: manager.user_id,
                request_id: String::new(),
            },
        ))
        .await;
    let status = expect_code(assigned, Code::PermissionDenied);
    let missing = denied_permission(&status).expect("names a permission");
    assert!(!missing.starts_with("identity.roles") && !missing.starts_with("identity.users"));
    let made = app
        .users()
        .create_user(as_user(
            &manager,
            new_user("alt@acme.test", vec![admin_role]),
        ))
        .await;
    expect_code(made, Code::PermissionDenied);
    // Giving their own role what it lacks, or a new role everything.
    let own = app.role_ids(&admin, &["role_manager"]).await[0];
    let current = app
        .roles()
        .get_role(as_user(&admin, pb::GetRoleRequest { id: own }))
        .await
        .unwrap()
        .into_inner();
    let mut widened = current.clone();
    widened.permissions.push("crm.deals.write".into());
    let updated = app
        .roles()
        .update_role(as_user(
            &manager,
            pb::UpdateRoleRequest {
                role: Some(widened),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["permissions".into()],
                }),
            },
        ))
        .await;
    assert_denied(updated, "crm.deals.write");
    let created = app
        .roles()
        .create_role(as_user(
            &manager,
            pb::CreateRoleRequest {
                role: Some(pb::Role {
                    name: "everything".into(),
                    permissions: tenant_permissions(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await;
    expect_code(created, Code::PermissionDenied);
    // Nor demote the admin.
    let demoted = app
        .roles()
        .unassign_role(as_user(
            &manager,
            pb::UnassignRoleRequest {
                role_id: admin_role,
                user_id: admin.user_id,
                request_id: String::new(),
            },
        ))
        .await;
    expect_code(demoted, Code::PermissionDenied);
    assert_eq!(
        changed_tables(&before, &rows(&app).await),
        Vec::<String>::new()
    );
    // A role within what they hold is theirs to grant.
    let (plain, _) = app.create_user(&admin, "plain@acme.test", &[]).await;
    let small = custom_role(&app, &admin, "small", &["identity.users.read"]).await;
    app.roles()
        .assign_role(as_user(
            &manager,
            pb::AssignRoleRequest {
                role_id: small,
                user_id: plain.id,
                request_id: String::new(),
            },
        ))
        .await
        .expect("a role within the manager's permissions is granted");
}

#[tokio::test]
async fn nobody_takes_over_an_account_holding_more_than_they_do() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let hr = holder_of(
        &app,
        &admin,
        "hr",
        &["identity.users.read", "identity.users.write"],
    )
    .await;
    let before = rows(&app).await;
    let reset = app
        .users()
        .set_user_password(as_user(
            &hr,
            pb::SetUserPasswordRequest {
                id: admin.user_id,
                password: "hijacked password 1".into(),
            },
        ))
        .await;
    expect_code(reset, Code::PermissionDenied);
    let renamed = app
        .users()
        .update_user(as_user(
            &hr,
            pb::UpdateUserRequest {
                user: Some(pb::User {
                    id: admin.user_id,
                    email: "mole@elsewhere.test".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["email".into()],
                }),
            },
        ))
        .await;
    expect_code(renamed, Code::PermissionDenied);
    assert_eq!(
        changed_tables(&before, &rows(&app).await),
        Vec::<String>::new()
    );
    app.login("admin@acme.test", PASSWORD)
        .await
        .expect("the admin's password is unchanged");
    // A user holding nothing hr lacks is hr's to manage.
    let (plain, _) = app.create_user(&admin, "plain@acme.test", &[]).await;
    app.users()
        .set_user_password(as_user(
            &hr,
            pb::SetUserPasswordRequest {
                id: plain.id,
                password: "a new password 1".into(),
            },
        ))
        .await
        .expect("hr sets a plain user's password");
}

#[tokio::test]
async fn no_secret_is_issued_for_a_service_account_holding_more_than_the_caller() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let (account, _, _) = app
        .create_service_account(&admin, "robot", &["admin"])
        .await;
    let keeper = holder_of(
        &app,
        &admin,
        "keeper",
        &[
            "identity.service_accounts.read",
            "identity.service_accounts.write",
        ],
    )
    .await;
    let before = rows(&app).await;
    let secret = app
        .service_accounts()
        .create_service_account_secret(as_user(
            &keeper,
            pb::CreateServiceAccountSecretRequest {
                service_account_id: account.id,
                request_id: String::new(),
            },
        ))
        .await;
    expect_code(secret, Code::PermissionDenied);
    assert_eq!(
        changed_tables(&before, &rows(&app).await),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn no_tenant_path_grants_the_platform_role_or_a_platform_permission() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let platform_admin = app.role_ids(&app.platform, &["platform_admin"]).await[0];
    let before = rows(&app).await;
    // The platform tenant's role is not the tenant's to name.
    let assigned = app
        .roles()
        .assign_role(as_user(
            &admin,
            pb::AssignRoleRequest {
                role_id: platform_admin,
                user_id: admin.user_id,
                request_id: String::new(),
            },
        ))
        .await;
    expect_code(assigned, Code::NotFound);
    let made = app
        .users()
        .create_user(as_user(
            &admin,
            new_user("root@acme.test", vec![platform_admin]),
        ))
        .await;
    expect_code(made, Code::InvalidArgument);
    let account = app
        .service_accounts()
        .create_service_account(as_user(
            &admin,
            pb::CreateServiceAccountRequest {
                service_account: Some(pb::ServiceAccount {
                    name: "root".into(),
                    role_ids: vec![platform_admin],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await;
    expect_code(account, Code::InvalidArgument);
    // Nor can a tenant role carry a platform permission, new or changed.
    let created = app
        .roles()
        .create_role(as_user(
            &admin,
            pb::CreateRoleRequest {
                role: Some(pb::Role {
                    name: "platform_admin".into(),
                    permissions: vec!["platform.tenants.write".into()],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await;
    expect_code(created, Code::InvalidArgument);
    let own_admin = app.role_ids(&admin, &["admin"]).await[0];
    let mut role = app
        .roles()
        .get_role(as_user(&admin, pb::GetRoleRequest { id: own_admin }))
        .await
        .unwrap()
        .into_inner();
    role.permissions.push("platform.keys.write".into());
    let updated = app
        .roles()
        .update_role(as_user(
            &admin,
            pb::UpdateRoleRequest {
                role: Some(role),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["permissions".into()],
                }),
            },
        ))
        .await;
    let status = expect_code(updated, Code::InvalidArgument);
    assert_eq!(reason(&status), "INVALID_ARGUMENT");
    assert_eq!(
        changed_tables(&before, &rows(&app).await),
        Vec::<String>::new()
    );
}
