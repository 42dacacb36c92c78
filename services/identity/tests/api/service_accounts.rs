//! Service accounts: creation with roles under AssignRole's rule, client secrets shown
//! once, IssueServiceToken, and what a service token may do.

use prost::Message as _;
use tonic::Code;

use fusion_identity::config::{PlatformServiceAccount, parse_platform_service_accounts};
use fusion_proto::identity::v1 as pb;

use crate::helpers::{Session, TestApp, as_user, claims_of, expect_code, reason, violated_fields};

fn new_account(name: &str, role_ids: Vec<i64>) -> pb::CreateServiceAccountRequest {
    pb::CreateServiceAccountRequest {
        service_account: Some(pb::ServiceAccount {
            name: name.into(),
            description: "Pushes deals to the ERP".into(),
            role_ids,
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

fn new_secret(account_id: i64, request_id: &str) -> pb::CreateServiceAccountSecretRequest {
    pb::CreateServiceAccountSecretRequest {
        service_account_id: account_id,
        request_id: request_id.into(),
    }
}

fn revoke(account_id: i64, secret_id: i64) -> pb::RevokeServiceAccountSecretRequest {
    pb::RevokeServiceAccountSecretRequest {
        service_account_id: account_id,
        secret_id,
        request_id: String::new(),
    }
}

/// Tries to create a role as `who` (which a service account's roles never allow).
async fn create_a_role(
    app: &TestApp,
    who: &Session,
) -> Result<tonic::Response<pb::Role>, tonic::Status> {
    app.roles()
        .create_role(as_user(
            who,
            pb::CreateRoleRequest {
                role: Some(pb::Role {
                    name: "sneaky".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
}

async fn get(app: &TestApp, admin: &Session, id: i64) -> pb::ServiceAccount {
    app.service_accounts()
        .get_service_account(as_user(admin, pb::GetServiceAccountRequest { id }))
        .await
        .expect("service account read")
        .into_inner()
}

async fn secrets(app: &TestApp, admin: &Session, id: i64) -> Vec<pb::ServiceAccountSecret> {
    app.service_accounts()
        .list_service_account_secrets(as_user(
            admin,
            pb::ListServiceAccountSecretsRequest {
                service_account_id: id,
            },
        ))
        .await
        .expect("secrets listed")
        .into_inner()
        .secrets
}

/// UNAUTHENTICATED INVALID_CLIENT_CREDENTIALS with the one message every refusal has.
fn refused(result: Result<Session, tonic::Status>) {
    let status = expect_code(result, Code::Unauthenticated);
    assert_eq!(reason(&status), "INVALID_CLIENT_CREDENTIALS");
    assert_eq!(status.message(), "invalid client id or secret");
}

#[tokio::test]
async fn a_service_accounts_token_carries_its_tenant_and_roles_and_they_limit_what_it_may_call() {
    let app = TestApp::spawn().await;
    let (acme, admin) = app.create_tenant("acme").await;
    let (account, client_id, secret) = app
        .create_service_account(&admin, "ERP sync", &["viewer"])
        .await;
    assert_eq!(account.tenant_id, acme.id);
    assert!(account.active);
    assert_eq!(account.role_names, ["viewer"]);
    assert_eq!(client_id, format!("sa_{}_{}", acme.id, account.id));
    assert_eq!(account.client_id, client_id);
    assert!(account.last_use_time.is_none());

    let token = app.service_token(&client_id, &secret).await.unwrap();
    assert_eq!((token.tenant_id, token.user_id), (acme.id, account.id));
    let claims = claims_of(&token.access_token);
    assert_eq!(claims["svc"], true);
    assert_eq!(claims["tid"], acme.id);
    assert_eq!(claims["sub"], account.id.to_string());
    assert_eq!(claims["roles"], serde_json::json!(["viewer"]));
    assert_eq!(claims["tz"], "UTC");
    let perms = claims["perms"].as_array().unwrap();
    assert!(perms.contains(&"identity.users.read".into()));
    assert!(
        !perms
            .iter()
            .any(|p| p.as_str().unwrap().ends_with(".write"))
    );

    // Its role allows reading users (and a service account is not one of them)...
    let users = app
        .users()
        .list_users(as_user(&token, pb::ListUsersRequest::default()))
        .await
        .expect("a viewer lists users")
        .into_inner()
        .users;
    assert_eq!(users.len(), 1, "the admin only: {users:?}");
    let status = expect_code(
        app.users()
            .get_user(as_user(&token, pb::GetUserRequest { id: account.id }))
            .await,
        Code::NotFound,
    );
    assert_eq!(reason(&status), "NOT_FOUND");
    // ...and nothing its role does not allow.
    let status = expect_code(create_a_role(&app, &token).await, Code::PermissionDenied);
    assert!(
        status.message().contains("identity.roles.write"),
        "{status:?}"
    );
    expect_code(
        app.service_accounts()
            .create_service_account_secret(as_user(&token, new_secret(account.id, "")))
            .await,
        Code::PermissionDenied,
    );

    // The use is recorded on the account and on the secret.
    let used = get(&app, &admin, account.id).await;
    assert!(used.last_use_time.is_some());
    let listed = secrets(&app, &admin, account.id).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_use_time.is_some());

    // A role given later (AssignRole takes the account's id) is in the next token.
    let writer = app.role_ids(&admin, &["sales_agent"]).await[0];
    app.roles()
        .assign_role(as_user(
            &admin,
            pb::AssignRoleRequest {
                role_id: writer,
                user_id: account.id,
                request_id: String::new(),
            },
        ))
        .await
        .expect("a role assigned to a service account");
    let token = app.service_token(&client_id, &secret).await.unwrap();
    assert_eq!(
        claims_of(&token.access_token)["roles"],
        serde_json::json!(["sales_agent", "viewer"])
    );
}

#[tokio::test]
async fn a_service_token_is_refused_on_another_tenants_data() {
    let app = TestApp::spawn().await;
    let (_, acme_admin) = app.create_tenant("acme").await;
    let (globex, globex_admin) = app.create_tenant("globex").await;
    let (account, client_id, secret) = app
        .create_service_account(&acme_admin, "ERP sync", &["admin"])
        .await;
    let token = app.service_token(&client_id, &secret).await.unwrap();

    // Its token names acme: presented for globex it is refused outright.
    let foreign = Session {
        tenant_id: globex.id,
        ..token.clone()
    };
    let status = expect_code(
        app.users()
            .list_users(as_user(&foreign, pb::ListUsersRequest::default()))
            .await,
        Code::Unauthenticated,
    );
    assert_eq!(reason(&status), "TENANT_MISMATCH");
    // For acme, globex's rows are simply not there.
    expect_code(
        app.users()
            .get_user(as_user(
                &token,
                pb::GetUserRequest {
                    id: globex_admin.user_id,
                },
            ))
            .await,
        Code::NotFound,
    );
    // A client id naming globex with acme's account and secret gets no token either.
    refused(
        app.service_token(&format!("sa_{}_{}", globex.id, account.id), &secret)
            .await,
    );
    // And globex's admin cannot see or give secrets to acme's account.
    expect_code(
        app.service_accounts()
            .get_service_account(as_user(
                &globex_admin,
                pb::GetServiceAccountRequest { id: account.id },
            ))
            .await,
        Code::NotFound,
    );
    expect_code(
        app.service_accounts()
            .create_service_account_secret(as_user(&globex_admin, new_secret(account.id, "")))
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn a_revoked_secret_stops_issuing_tokens_at_once_and_rotation_has_no_gap() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let (account, client_id, old) = app
        .create_service_account(&admin, "ERP sync", &["viewer"])
        .await;
    app.service_token(&client_id, &old).await.unwrap();

    // Rotation: a second secret, both work, then the first is revoked.
    let new = app
        .service_accounts()
        .create_service_account_secret(as_user(&admin, new_secret(account.id, "")))
        .await
        .unwrap()
        .into_inner();
    app.service_token(&client_id, &old).await.unwrap();
    app.service_token(&client_id, &new.client_secret)
        .await
        .unwrap();
    let listed = secrets(&app, &admin, account.id).await;
    assert_eq!(listed.len(), 2);
    let old_id = listed
        .iter()
        .find(|s| old.starts_with(&s.prefix))
        .expect("the old secret is listed by its prefix")
        .id;
    let revoked = app
        .service_accounts()
        .revoke_service_account_secret(as_user(&admin, revoke(account.id, old_id)))
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.revoke_time.is_some());
    refused(app.service_token(&client_id, &old).await);
    app.service_token(&client_id, &new.client_secret)
        .await
        .unwrap();
    assert_eq!(
        secrets(&app, &admin, account.id).await.len(),
        1,
        "a revoked secret is not listed"
    );
    // Revoking again changes nothing; another account's secret id is NOT_FOUND.
    let again = app
        .service_accounts()
        .revoke_service_account_secret(as_user(&admin, revoke(account.id, old_id)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.revoke_time, revoked.revoke_time);
    let (other, _, _) = app
        .create_service_account(&admin, "Other", &["viewer"])
        .await;
    expect_code(
        app.service_accounts()
            .revoke_service_account_secret(as_user(
                &admin,
                revoke(other.id, new.secret.unwrap().id),
            ))
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn wrong_secrets_unknown_clients_and_unusable_accounts_get_the_same_refusal() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let (account, client_id, secret) = app
        .create_service_account(&admin, "ERP sync", &["viewer"])
        .await;
    let mut wrong = secret.clone();
    wrong.pop();
    wrong.push(if secret.ends_with('A') { 'B' } else { 'A' });
    refused(app.service_token(&client_id, &wrong).await);
    refused(app.service_token("sa_999999_1", &secret).await);
    refused(app.service_token("not-a-client-id", &secret).await);
    refused(
        app.service_token(
            &format!("sa_{}_{}", account.tenant_id, admin.user_id),
            &secret,
        )
        .await,
    );

    // Deactivated: no token, until it is active again.
    let request_id = "0b6c2f0e-5d1a-4a8e-9f3b-7c2d1e0a9b8c";
    let deactivate = || pb::DeactivateServiceAccountRequest {
        id: account.id,
        request_id: request_id.into(),
    };
    let inactive = app
        .service_accounts()
        .deactivate_service_account(as_user(&admin, deactivate()))
        .await
        .unwrap()
        .into_inner();
    assert!(!inactive.active);
    refused(app.service_token(&client_id, &secret).await);
    app.service_accounts()
        .activate_service_account(as_user(
            &admin,
            pb::ActivateServiceAccountRequest {
                id: account.id,
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    app.service_token(&client_id, &secret).await.unwrap();
    // A retry of the deactivation returns its first answer and does not act again.
    let retried = app
        .service_accounts()
        .deactivate_service_account(as_user(&admin, deactivate()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried, inactive);
    app.service_token(&client_id, &secret).await.unwrap();

    // Deleted: no token; undeleted: its secrets work again.
    let deleted = app
        .service_accounts()
        .delete_service_account(as_user(
            &admin,
            pb::DeleteServiceAccountRequest {
                id: account.id,
                etag: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.delete_time.is_some());
    refused(app.service_token(&client_id, &secret).await);
    expect_code(
        app.service_accounts()
            .create_service_account_secret(as_user(&admin, new_secret(account.id, "")))
            .await,
        Code::NotFound,
    );
    app.service_accounts()
        .undelete_service_account(as_user(
            &admin,
            pb::UndeleteServiceAccountRequest { id: account.id },
        ))
        .await
        .unwrap();
    app.service_token(&client_id, &secret).await.unwrap();

    // Bounds come first and name the field.
    let status = expect_code(
        app.service_token(&client_id, &"x".repeat(129)).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["client_secret"]);
    let status = expect_code(app.service_token("", "").await, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["client_id", "client_secret"]);
}

#[tokio::test]
async fn the_secret_is_shown_once_and_stored_nowhere_in_clear() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let (account, _, _) = app.create_service_account(&admin, "ERP sync", &[]).await;
    let request_id = "5f0c6f4e-8f3b-4c1e-9d57-3a1e2b7c9d10";
    let first = app
        .service_accounts()
        .create_service_account_secret(as_user(&admin, new_secret(account.id, request_id)))
        .await
        .unwrap()
        .into_inner();
    let secret = first.client_secret.clone();
    assert!(secret.starts_with("sas_") && secret.len() == 47, "{secret}");
    let meta = first.secret.clone().unwrap();
    assert!(secret.starts_with(&meta.prefix) && meta.prefix.len() < 16);

    // A retry creates no second secret and does not show the secret again.
    let replay = app
        .service_accounts()
        .create_service_account_secret(as_user(&admin, new_secret(account.id, request_id)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replay.secret, first.secret);
    assert_eq!(replay.client_id, first.client_id);
    assert_eq!(replay.client_secret, "");
    assert_eq!(secrets(&app, &admin, account.id).await.len(), 2);
    app.service_token(&first.client_id, &secret).await.unwrap();

    // Get, List and the secret list never carry it.
    let got = get(&app, &admin, account.id).await;
    let listed = app
        .service_accounts()
        .list_service_accounts(as_user(&admin, pb::ListServiceAccountsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let listed_secrets = pb::ListServiceAccountSecretsResponse {
        secrets: secrets(&app, &admin, account.id).await,
    };
    let tail = &secret.as_bytes()[meta.prefix.len()..];
    for bytes in [
        got.encode_to_vec(),
        listed.encode_to_vec(),
        listed_secrets.encode_to_vec(),
    ] {
        assert!(!bytes.windows(tail.len()).any(|w| w == tail));
    }

    // Neither the idempotency table nor the secrets table holds it: only a digest.
    let db = &app.app.state().db;
    let mut tx = db.begin(account.tenant_id).await.unwrap();
    let saved: Vec<Vec<u8>> = sqlx::query_scalar("SELECT response FROM identity.idempotency_keys")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert!(!saved.is_empty(), "the replay came from the table");
    let stored: Vec<(Vec<u8>, String)> =
        sqlx::query_as("SELECT secret_hash, prefix FROM identity.service_account_secrets")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(stored.len(), 2);
    for bytes in saved.iter().chain(stored.iter().map(|(digest, _)| digest)) {
        assert!(!bytes.windows(tail.len()).any(|w| w == tail));
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(secret.as_bytes()).to_vec();
    assert!(
        stored
            .iter()
            .any(|(d, p)| *d == digest && *p == meta.prefix)
    );
}

#[tokio::test]
async fn an_account_holds_at_most_five_unrevoked_secrets() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let (account, _, _) = app.create_service_account(&admin, "ERP sync", &[]).await;
    for _ in 1..5 {
        app.service_accounts()
            .create_service_account_secret(as_user(&admin, new_secret(account.id, "")))
            .await
            .unwrap();
    }
    let status = expect_code(
        app.service_accounts()
            .create_service_account_secret(as_user(&admin, new_secret(account.id, "")))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "SECRET_LIMIT");
    let oldest = secrets(&app, &admin, account.id).await.pop().unwrap();
    app.service_accounts()
        .revoke_service_account_secret(as_user(&admin, revoke(account.id, oldest.id)))
        .await
        .unwrap();
    app.service_accounts()
        .create_service_account_secret(as_user(&admin, new_secret(account.id, "")))
        .await
        .expect("a revoked secret frees a place");
}

#[tokio::test]
async fn granting_roles_needs_assign_roles_permission_and_never_the_platform_role() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let (_, globex_admin) = app.create_tenant("globex").await;
    // A role that manages service accounts but may not grant roles.
    app.roles()
        .create_role(as_user(
            &admin,
            pb::CreateRoleRequest {
                role: Some(pb::Role {
                    name: "integrator".into(),
                    permissions: vec![
                        "identity.service_accounts.read".into(),
                        "identity.service_accounts.write".into(),
                        "identity.roles.read".into(),
                    ],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let (_, integrator) = app
        .create_user(&admin, "integrator@acme.test", &["integrator"])
        .await;
    let admin_role = app.role_ids(&admin, &["admin"]).await;
    let status = expect_code(
        app.service_accounts()
            .create_service_account(as_user(
                &integrator,
                new_account("Backdoor", admin_role.clone()),
            ))
            .await,
        Code::PermissionDenied,
    );
    assert!(
        status.message().contains("identity.roles.write"),
        "{status:?}"
    );
    // Without roles it may create one; nothing was written by the refused call.
    app.service_accounts()
        .create_service_account(as_user(&integrator, new_account("Roleless", vec![])))
        .await
        .expect("an account without roles");
    let names: Vec<String> = app
        .service_accounts()
        .list_service_accounts(as_user(
            &admin,
            pb::ListServiceAccountsRequest {
                show_deleted: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .service_accounts
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["Roleless"]);

    // Another tenant's role, and a role id that is not one, are invalid.
    let globex_role = app.role_ids(&globex_admin, &["viewer"]).await;
    let status = expect_code(
        app.service_accounts()
            .create_service_account(as_user(&admin, new_account("Foreign", globex_role)))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["service_account.role_ids"]);
    let status = expect_code(
        app.service_accounts()
            .create_service_account(as_user(&admin, new_account("Negative", vec![-1])))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["service_account.role_ids"]);

    // The platform role: not by Create, not by AssignRole.
    let platform_role = app.role_ids(&app.platform, &["platform_admin"]).await;
    let status = expect_code(
        app.service_accounts()
            .create_service_account(as_user(
                &app.platform,
                new_account("Platform bot", platform_role.clone()),
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "BUILT_IN_ROLE");
    let bot = app
        .service_accounts()
        .create_service_account(as_user(&app.platform, new_account("Platform bot", vec![])))
        .await
        .unwrap()
        .into_inner();
    let status = expect_code(
        app.roles()
            .assign_role(as_user(
                &app.platform,
                pb::AssignRoleRequest {
                    role_id: platform_role[0],
                    user_id: bot.id,
                    request_id: String::new(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "BUILT_IN_ROLE");
}

#[tokio::test]
async fn a_service_account_is_no_user_no_admin_of_last_resort_and_does_not_delete_itself() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let (account, client_id, secret) = app
        .create_service_account(&admin, "Admin bot", &["admin"])
        .await;
    // UserService does not reach it: no password can be set, no user update made.
    let status = expect_code(
        app.users()
            .set_user_password(as_user(
                &admin,
                pb::SetUserPasswordRequest {
                    id: account.id,
                    password: "a long enough password".into(),
                },
            ))
            .await,
        Code::NotFound,
    );
    assert_eq!(reason(&status), "NOT_FOUND");
    expect_code(
        app.users()
            .delete_user(as_user(
                &admin,
                pb::DeleteUserRequest {
                    id: account.id,
                    etag: String::new(),
                },
            ))
            .await,
        Code::NotFound,
    );
    // Holding admin, it does not keep the tenant administered on its own.
    let admin_role = app.role_ids(&admin, &["admin"]).await[0];
    let status = expect_code(
        app.roles()
            .unassign_role(as_user(
                &admin,
                pb::UnassignRoleRequest {
                    role_id: admin_role,
                    user_id: admin.user_id,
                    request_id: String::new(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "LAST_ADMIN");
    // With its own admin token it may manage accounts, but not delete itself.
    let token = app.service_token(&client_id, &secret).await.unwrap();
    let status = expect_code(
        app.service_accounts()
            .delete_service_account(as_user(
                &token,
                pb::DeleteServiceAccountRequest {
                    id: account.id,
                    etag: String::new(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "SELF");
    let status = expect_code(
        app.service_accounts()
            .deactivate_service_account(as_user(
                &token,
                pb::DeactivateServiceAccountRequest {
                    id: account.id,
                    request_id: String::new(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "SELF");
}

#[tokio::test]
async fn secrets_created_at_once_do_not_pass_the_limit() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let (account, _, _) = app.create_service_account(&admin, "ERP sync", &[]).await;
    let calls = (0..8).map(|_| {
        let mut client = app.service_accounts();
        let req = as_user(&admin, new_secret(account.id, ""));
        async move { client.create_service_account_secret(req).await }
    });
    let results = futures::future::join_all(calls).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 4, "one secret was there already: {results:?}");
    assert_eq!(secrets(&app, &admin, account.id).await.len(), 5);
}

// Platform service accounts acting in a tenant: IssueServiceToken with `tenant_id`.

const CRM_SECRET: &str = "crm-local-secret-0123456789abcdefghij";
const PROPERTY_SECRET: &str = "property-local-secret-0123456789abcdef";
const CRM: &str = "sa_platform_crm";

fn platform_services(items: &str) -> Vec<PlatformServiceAccount> {
    parse_platform_service_accounts(items).expect("valid platform service accounts")
}

/// Identity with `crm` and `property` provisioned as platform service accounts.
async fn spawn_with_platform_services() -> TestApp {
    let items = format!("crm:{CRM_SECRET},property:{PROPERTY_SECRET}");
    TestApp::spawn_with(|c| c.platform_service_accounts = platform_services(&items)).await
}

fn session_of(r: &pb::IssueServiceTokenResponse) -> Session {
    Session {
        tenant_id: r.tenant_id,
        user_id: r.service_account_id,
        access_token: r.access_token.clone(),
        refresh_token: String::new(),
    }
}

/// The session's tenant's service accounts named `name`, deleted ones too.
async fn accounts_named(app: &TestApp, session: &Session, name: &str) -> Vec<pb::ServiceAccount> {
    app.service_accounts()
        .list_service_accounts(as_user(
            session,
            pb::ListServiceAccountsRequest {
                filter: format!("name = {name:?}"),
                show_deleted: true,
                ..Default::default()
            },
        ))
        .await
        .expect("service accounts listed")
        .into_inner()
        .service_accounts
}

fn refused_with(status: &tonic::Status, code: Code, why: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(status), why, "{status:?}");
}

#[tokio::test]
async fn a_platform_service_gets_tokens_for_each_tenants_system_account_which_reads_and_writes_nothing()
 {
    let app = spawn_with_platform_services().await;
    let (acme, admin) = app.create_tenant("acme").await;
    let (globex, globex_admin) = app.create_tenant("globex").await;
    assert!(accounts_named(&app, &admin, "crm").await.is_empty());

    let issued = app.token_for(CRM, CRM_SECRET, acme.id).await.unwrap();
    assert_eq!(issued.tenant_id, acme.id);
    assert_eq!(issued.token_type, "Bearer");
    assert!(issued.expires_in > 0);
    // The tenant's admin sees the system account among its service accounts.
    let listed = accounts_named(&app, &admin, "crm").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let system = &listed[0];
    assert_eq!(system.id, issued.service_account_id);
    assert_eq!(system.tenant_id, acme.id);
    assert!(system.active);
    assert_eq!(system.role_names, ["system"]);
    assert!(system.last_use_time.is_some());
    let claims = claims_of(&issued.access_token);
    assert_eq!(claims["svc"], true);
    assert_eq!(claims["tid"], acme.id);
    assert_eq!(claims["sub"], system.id.to_string());
    assert_eq!(claims["roles"], serde_json::json!(["system"]));
    let perms = claims["perms"].as_array().unwrap();
    for needed in [
        "identity.users.read",
        "property.lots.read",
        "crm.deals.read",
    ] {
        assert!(perms.contains(&needed.into()), "{needed}");
    }
    assert!(perms.iter().all(|p| p.as_str().unwrap().ends_with(".read")));

    // It reads the tenant's people, and changes nothing.
    let session = session_of(&issued);
    let users = app
        .users()
        .list_users(as_user(&session, pb::ListUsersRequest::default()))
        .await
        .expect("the system account lists users")
        .into_inner()
        .users;
    assert_eq!(users.len(), 1, "the admin only: {users:?}");
    let status = expect_code(create_a_role(&app, &session).await, Code::PermissionDenied);
    assert_eq!(reason(&status), "PERMISSION_DENIED");

    // The same account next time; another service and another tenant have their own.
    let again = app.token_for(CRM, CRM_SECRET, acme.id).await.unwrap();
    assert_eq!(again.service_account_id, system.id);
    let property = app
        .token_for("sa_platform_property", PROPERTY_SECRET, acme.id)
        .await
        .unwrap();
    assert_ne!(property.service_account_id, system.id);
    assert_eq!(property.tenant_id, acme.id);
    let in_globex = app.token_for(CRM, CRM_SECRET, globex.id).await.unwrap();
    assert_eq!(in_globex.tenant_id, globex.id);
    assert_ne!(in_globex.service_account_id, system.id);
    let globex_accounts = accounts_named(&app, &globex_admin, "crm").await;
    assert_eq!(globex_accounts.len(), 1);
    assert_eq!(globex_accounts[0].id, in_globex.service_account_id);
    // Acme's token does not reach globex's data.
    expect_code(
        app.users()
            .get_user(as_user(
                &session,
                pb::GetUserRequest {
                    id: globex_admin.user_id,
                },
            ))
            .await,
        Code::NotFound,
    );

    // Without a tenant the token is the platform account's own, which only issues.
    let own = app.token_for(CRM, CRM_SECRET, 0).await.unwrap();
    assert_eq!(own.tenant_id, app.platform.tenant_id);
    let own_claims = claims_of(&own.access_token);
    assert_eq!(own_claims["roles"], serde_json::json!(["platform_service"]));
    assert_eq!(
        own_claims["perms"],
        serde_json::json!(["platform.service_tokens.issue"])
    );
    // Naming the platform tenant itself is the same as naming none.
    let same = app
        .token_for(CRM, CRM_SECRET, app.platform.tenant_id)
        .await
        .unwrap();
    assert_eq!(same.service_account_id, own.service_account_id);
    // The platform account is listed in the platform tenant, and its numeric client
    // id works as well as the service's name.
    let platform_accounts = accounts_named(&app, &app.platform, "crm").await;
    assert_eq!(platform_accounts.len(), 1);
    assert_eq!(platform_accounts[0].id, own.service_account_id);
    assert_eq!(platform_accounts[0].role_names, ["platform_service"]);
    let by_number = app
        .token_for(&platform_accounts[0].client_id, CRM_SECRET, acme.id)
        .await
        .unwrap();
    assert_eq!(by_number.service_account_id, system.id);
}

#[tokio::test]
async fn only_a_platform_service_account_with_the_permission_may_ask_for_another_tenant() {
    let app = spawn_with_platform_services().await;
    let (acme, admin) = app.create_tenant("acme").await;
    let (globex, globex_admin) = app.create_tenant("globex").await;

    // A tenant's account, even its admin's, acts in its own tenant only.
    let (_, client_id, secret) = app.create_service_account(&admin, "crm", &["admin"]).await;
    let status = app
        .token_for(&client_id, &secret, globex.id)
        .await
        .unwrap_err();
    refused_with(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    let own = app.token_for(&client_id, &secret, acme.id).await.unwrap();
    assert_eq!(own.tenant_id, acme.id);
    assert!(accounts_named(&app, &globex_admin, "crm").await.is_empty());

    // A platform tenant's account without `platform.service_tokens.issue` is refused;
    // the role that carries it is bootstrap's to grant, the permission no role's to add.
    let (platform_account, client_id, secret) = app
        .create_service_account(&app.platform, "reporting", &["viewer"])
        .await;
    let status = app
        .token_for(&client_id, &secret, acme.id)
        .await
        .unwrap_err();
    refused_with(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    let service_role = app.role_ids(&app.platform, &["platform_service"]).await[0];
    let status = expect_code(
        app.roles()
            .assign_role(as_user(
                &app.platform,
                pb::AssignRoleRequest {
                    role_id: service_role,
                    user_id: platform_account.id,
                    request_id: String::new(),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "BUILT_IN_ROLE");
    let status = expect_code(
        app.roles()
            .update_role(as_user(
                &app.platform,
                pb::UpdateRoleRequest {
                    role: Some(pb::Role {
                        id: service_role,
                        description: "changed".into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["description".into()],
                    }),
                },
            ))
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "BUILT_IN_ROLE");
    let status = expect_code(
        app.roles()
            .create_role(as_user(
                &app.platform,
                pb::CreateRoleRequest {
                    role: Some(pb::Role {
                        name: "issuer".into(),
                        permissions: vec!["platform.service_tokens.issue".into()],
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["role.permissions"]);
    let status = app
        .token_for(&client_id, &secret, acme.id)
        .await
        .unwrap_err();
    refused_with(&status, Code::PermissionDenied, "PERMISSION_DENIED");

    // Wrong credentials are refused as ever, whatever tenant they ask for.
    refused(
        app.token_for(CRM, PROPERTY_SECRET, acme.id)
            .await
            .map(|r| session_of(&r)),
    );
    refused(
        app.token_for("sa_platform_billing", CRM_SECRET, acme.id)
            .await
            .map(|r| session_of(&r)),
    );
    refused(
        app.token_for("sa_platform_CRM", CRM_SECRET, acme.id)
            .await
            .map(|r| session_of(&r)),
    );
    let status = app.token_for(CRM, CRM_SECRET, -1).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["tenant_id"]);
    assert!(
        accounts_named(&app, &admin, "crm").await.len() == 1,
        "acme's own crm account only"
    );
}

#[tokio::test]
async fn a_system_account_the_tenant_deactivated_or_deleted_gets_no_token() {
    let app = spawn_with_platform_services().await;
    let (acme, admin) = app.create_tenant("acme").await;
    let system = app.token_for(CRM, CRM_SECRET, acme.id).await.unwrap();
    let id = system.service_account_id;
    let inactive = |status: tonic::Status| {
        refused_with(&status, Code::FailedPrecondition, "SYSTEM_ACCOUNT_INACTIVE");
    };

    app.service_accounts()
        .deactivate_service_account(as_user(
            &admin,
            pb::DeactivateServiceAccountRequest {
                id,
                request_id: String::new(),
            },
        ))
        .await
        .expect("the tenant's admin deactivates the system account");
    inactive(app.token_for(CRM, CRM_SECRET, acme.id).await.unwrap_err());
    // Other services are not affected.
    app.token_for("sa_platform_property", PROPERTY_SECRET, acme.id)
        .await
        .unwrap();
    app.service_accounts()
        .activate_service_account(as_user(
            &admin,
            pb::ActivateServiceAccountRequest {
                id,
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let back = app.token_for(CRM, CRM_SECRET, acme.id).await.unwrap();
    assert_eq!(back.service_account_id, id);

    // Deleted: no token, and no new account in its place, until it is restored.
    app.service_accounts()
        .delete_service_account(as_user(
            &admin,
            pb::DeleteServiceAccountRequest {
                id,
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    inactive(app.token_for(CRM, CRM_SECRET, acme.id).await.unwrap_err());
    assert_eq!(accounts_named(&app, &admin, "crm").await.len(), 1);
    app.service_accounts()
        .undelete_service_account(as_user(&admin, pb::UndeleteServiceAccountRequest { id }))
        .await
        .unwrap();
    let restored = app.token_for(CRM, CRM_SECRET, acme.id).await.unwrap();
    assert_eq!(restored.service_account_id, id);
}

#[tokio::test]
async fn a_deleted_or_unknown_tenant_gets_no_token() {
    let app = spawn_with_platform_services().await;
    let (acme, admin) = app.create_tenant("acme").await;
    let (globex, _) = app.create_tenant("globex").await;
    let status = app.token_for(CRM, CRM_SECRET, 999_999).await.unwrap_err();
    refused_with(&status, Code::NotFound, "NOT_FOUND");
    app.tenants()
        .delete_tenant(as_user(
            &app.platform,
            pb::DeleteTenantRequest {
                id: globex.id,
                etag: String::new(),
            },
        ))
        .await
        .expect("globex deleted");
    let status = app.token_for(CRM, CRM_SECRET, globex.id).await.unwrap_err();
    refused_with(&status, Code::NotFound, "NOT_FOUND");
    // A live tenant still works, and the failures created nothing.
    app.token_for(CRM, CRM_SECRET, acme.id).await.unwrap();
    assert_eq!(accounts_named(&app, &admin, "crm").await.len(), 1);
}

#[tokio::test]
async fn concurrent_first_uses_create_one_system_account() {
    let app = spawn_with_platform_services().await;
    let (acme, admin) = app.create_tenant("acme").await;
    let (globex, globex_admin) = app.create_tenant("globex").await;
    // Eight at once in each of two tenants, all with the one platform account.
    let issued = futures::future::join_all((0..16).map(|n| {
        let tenant = if n % 2 == 0 { acme.id } else { globex.id };
        app.token_for(CRM, CRM_SECRET, tenant)
    }))
    .await;
    let mut ids = std::collections::BTreeSet::new();
    for r in issued {
        let r = r.expect("every concurrent first use gets a token");
        ids.insert((r.tenant_id, r.service_account_id));
    }
    assert_eq!(ids.len(), 2, "one account per tenant: {ids:?}");
    for (session, tenant) in [(&admin, acme.id), (&globex_admin, globex.id)] {
        let listed = accounts_named(&app, session, "crm").await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].role_names, ["system"]);
        assert!(ids.contains(&(tenant, listed[0].id)));
    }
}

#[tokio::test]
async fn concurrent_requests_of_one_account_all_get_tokens() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.create_tenant("acme").await;
    let (_, client_id, secret) = app
        .create_service_account(&admin, "ERP sync", &["viewer"])
        .await;
    let issued =
        futures::future::join_all((0..12).map(|_| app.service_token(&client_id, &secret))).await;
    for r in issued {
        r.expect("no request of the account is aborted by another");
    }
}

#[tokio::test]
async fn configured_platform_accounts_are_created_then_kept_to_their_configured_secrets() {
    let app = TestApp::spawn().await;
    let db = &app.app.state().db;
    let (acme, _) = app.create_tenant("acme").await;
    // Nothing configured: no such account.
    refused(
        app.token_for(CRM, CRM_SECRET, acme.id)
            .await
            .map(|r| session_of(&r)),
    );

    let old = "old-crm-secret-0123456789abcdefghijkl";
    let new = "new-crm-secret-0123456789abcdefghijkl";
    let provision = |items: String| async move {
        fusion_identity::bootstrap::ensure_platform_services(db, &platform_services(&items))
            .await
            .expect("provisioned")
    };
    assert_eq!(
        provision(format!("crm:{old}")).await,
        Some(app.platform.tenant_id)
    );
    let first = app.token_for(CRM, old, acme.id).await.unwrap();
    // Again, with the same secret: nothing changes.
    provision(format!("crm:{old}")).await;
    app.token_for(CRM, old, acme.id).await.unwrap();
    let platform_accounts = accounts_named(&app, &app.platform, "crm").await;
    assert_eq!(platform_accounts.len(), 1);
    let account_id = platform_accounts[0].id;
    assert_eq!(secrets(&app, &app.platform, account_id).await.len(), 1);

    // Rotation: both for a while, then only the new one; the old is revoked at once.
    provision(format!("crm:{old},crm:{new}")).await;
    app.token_for(CRM, old, acme.id).await.unwrap();
    app.token_for(CRM, new, acme.id).await.unwrap();
    provision(format!("crm:{new}")).await;
    refused(
        app.token_for(CRM, old, acme.id)
            .await
            .map(|r| session_of(&r)),
    );
    let rotated = app.token_for(CRM, new, acme.id).await.unwrap();
    assert_eq!(rotated.service_account_id, first.service_account_id);
    let held = secrets(&app, &app.platform, account_id).await;
    assert_eq!(held.len(), 1);
    assert!(new.starts_with(&held[0].prefix) && held[0].prefix.len() < 10);
    // Its secrets are digests, never the secret itself.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT secret_hash FROM identity.service_account_secrets WHERE tenant_id = $1",
    )
    .bind(app.platform.tenant_id)
    .fetch_all(&mut *db.begin(app.platform.tenant_id).await.unwrap())
    .await
    .unwrap();
    assert!(
        stored
            .iter()
            .all(|d| d.len() == 32 && !d.windows(8).any(|w| w == &new.as_bytes()[..8]))
    );

    // An operator's deactivation is kept by the next provisioning.
    app.service_accounts()
        .deactivate_service_account(as_user(
            &app.platform,
            pb::DeactivateServiceAccountRequest {
                id: account_id,
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    provision(format!("crm:{new}")).await;
    refused(
        app.token_for(CRM, new, acme.id)
            .await
            .map(|r| session_of(&r)),
    );
}

#[tokio::test]
async fn identity_provisions_its_configured_platform_accounts_at_start() {
    let app = TestApp::spawn().await;
    let (acme, _) = app.create_tenant("acme").await;
    let mut config = app.app.state().config.as_ref().clone();
    config.platform_service_accounts = platform_services(&format!("property:{PROPERTY_SECRET}"));
    let replica = fusion_identity::Application::build(
        config,
        fusion_testkit::bind_ephemeral().await,
        fusion_testkit::bind_ephemeral().await,
    )
    .await
    .expect("a second identity starts");
    let channel = fusion_testkit::connect_channel(replica.grpc_addr()).await;
    let issued = pb::auth_service_client::AuthServiceClient::new(channel)
        .issue_service_token(pb::IssueServiceTokenRequest {
            client_id: "sa_platform_property".into(),
            client_secret: PROPERTY_SECRET.into(),
            tenant_id: acme.id,
        })
        .await
        .expect("the account provisioned at start issues tokens")
        .into_inner();
    assert_eq!(issued.tenant_id, acme.id);
    replica.stop().await.unwrap();
}
