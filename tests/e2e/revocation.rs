//! Revocation: an access token stops working everywhere within seconds of a
//! deactivation, a logout, a role taken away or changed, or a deletion — at the edge
//! and directly at a service — and a stream opened with it ends. Identity publishes
//! `identity.access.revoked` through its outbox and NATS (a private JetStream here);
//! the edge and every service follow it into their deny lists.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

use fusion_e2e::{PASSWORD, Stack, with_token};
use fusion_proto::crm::v1 as crm;
use fusion_proto::crm::v1::lead_service_client::LeadServiceClient;
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::auth_service_client::AuthServiceClient;
use fusion_proto::identity::v1::role_service_client::RoleServiceClient;
use fusion_proto::identity::v1::user_service_client::UserServiceClient;
use fusion_proto::property::v1 as ppb;
use fusion_proto::property::v1::lot_service_client::LotServiceClient;

/// How long a revocation may take to be seen, at most, before a test fails (the
/// promise is 5 s; this leaves room for a loaded machine).
const DEADLINE: Duration = Duration::from_secs(10);

/// A signed-in user of acme.
struct Session {
    user_id: i64,
    tenant_id: i64,
    access: String,
    refresh: String,
}

async fn sign_in(stack: &Stack, email: &str) -> Session {
    let r = AuthServiceClient::new(stack.channel.clone())
        .login(pb::LoginRequest {
            email: email.into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("login")
        .into_inner();
    Session {
        user_id: r.user_id,
        tenant_id: r.tenant_id,
        access: r.access_token,
        refresh: r.refresh_token,
    }
}

async fn role_id(stack: &Stack, admin: &str, name: &str) -> i64 {
    RoleServiceClient::new(stack.channel.clone())
        .list_roles(with_token(
            admin,
            pb::ListRolesRequest {
                filter: format!("name = \"{name}\""),
                page_size: 10,
                ..Default::default()
            },
        ))
        .await
        .expect("list roles")
        .into_inner()
        .roles
        .first()
        .unwrap_or_else(|| panic!("role {name}"))
        .id
}

/// Creates `email` in acme with `role_id` and signs them in.
async fn user_with_role(stack: &Stack, admin: &str, email: &str, role_id: i64) -> Session {
    UserServiceClient::new(stack.channel.clone())
        .create_user(with_token(
            admin,
            pb::CreateUserRequest {
                user: Some(pb::User {
                    name: "Revocable Rita".into(),
                    email: email.into(),
                    ..Default::default()
                }),
                password: PASSWORD.into(),
                role_ids: vec![role_id],
                request_id: String::new(),
            },
        ))
        .await
        .expect("user created");
    sign_in(stack, email).await
}

/// A read in crm with `token`: through `channel` (the edge), or directly at crm with
/// the tenant header the edge would set.
async fn list_leads(
    channel: &Channel,
    session: &Session,
    direct: bool,
) -> Result<(), tonic::Status> {
    let mut req = with_token(
        &session.access,
        crm::ListLeadsRequest {
            page_size: 1,
            ..Default::default()
        },
    );
    if direct {
        req.metadata_mut().insert(
            "x-tenant-id",
            session.tenant_id.to_string().parse().unwrap(),
        );
    }
    LeadServiceClient::new(channel.clone())
        .list_leads(req)
        .await
        .map(|_| ())
}

/// Polls until `session`'s token is refused as revoked through `channel`, failing
/// after [`DEADLINE`]; returns how long it took.
async fn refused(what: &str, channel: &Channel, session: &Session, direct: bool) -> Duration {
    let started = Instant::now();
    loop {
        match list_leads(channel, session, direct).await {
            Ok(()) => {}
            Err(status) => {
                assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
                assert_eq!(
                    status.get_details_error_info().expect("error info").reason,
                    "TOKEN_REVOKED",
                    "{what}"
                );
                return started.elapsed();
            }
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: the token still works after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts the token is refused as revoked at the edge and directly at crm.
async fn refused_everywhere(stack: &Stack, crm_direct: &Channel, what: &str, session: &Session) {
    refused(&format!("{what} (edge)"), &stack.channel, session, false).await;
    refused(&format!("{what} (crm directly)"), crm_direct, session, true).await;
}

#[tokio::test]
async fn deactivation_logout_losing_a_role_or_deletion_revokes_the_access_token_everywhere() {
    let stack = Stack::spawn_with_events(|_| {}).await;
    let crm_direct = fusion_testkit::connect_channel(stack.crm.grpc_addr()).await;
    let admin = stack.login("admin@acme.test").await.unwrap().token;
    let viewer = role_id(&stack, &admin, "viewer").await;
    let deactivated = user_with_role(&stack, &admin, "deactivated@acme.test", viewer).await;
    let logged_out = user_with_role(&stack, &admin, "logged-out@acme.test", viewer).await;
    let demoted = user_with_role(&stack, &admin, "demoted@acme.test", viewer).await;
    let deleted = user_with_role(&stack, &admin, "deleted@acme.test", viewer).await;
    let bystander = user_with_role(&stack, &admin, "bystander@acme.test", viewer).await;
    for session in [&deactivated, &logged_out, &demoted, &deleted, &bystander] {
        list_leads(&stack.channel, session, false)
            .await
            .expect("a fresh token works");
        list_leads(&crm_direct, session, true)
            .await
            .expect("and directly at crm");
    }
    let users = || UserServiceClient::new(stack.channel.clone());

    users()
        .deactivate_user(with_token(
            &admin,
            pb::DeactivateUserRequest {
                id: deactivated.user_id,
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    refused_everywhere(&stack, &crm_direct, "deactivated", &deactivated).await;

    AuthServiceClient::new(stack.channel.clone())
        .logout(pb::LogoutRequest {
            refresh_token: logged_out.refresh.clone(),
        })
        .await
        .unwrap();
    refused_everywhere(&stack, &crm_direct, "logged out", &logged_out).await;
    // Signing in again a moment later gives a token that works.
    let back = sign_in(&stack, "logged-out@acme.test").await;
    list_leads(&stack.channel, &back, false)
        .await
        .expect("a token issued after the logout works");

    RoleServiceClient::new(stack.channel.clone())
        .unassign_role(with_token(
            &admin,
            pb::UnassignRoleRequest {
                role_id: viewer,
                user_id: demoted.user_id,
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    refused_everywhere(&stack, &crm_direct, "role taken away", &demoted).await;

    users()
        .delete_user(with_token(
            &admin,
            pb::DeleteUserRequest {
                id: deleted.user_id,
                etag: String::new(),
            },
        ))
        .await
        .unwrap();
    refused_everywhere(&stack, &crm_direct, "deleted", &deleted).await;

    // Nobody else lost anything.
    list_leads(&stack.channel, &bystander, false)
        .await
        .expect("an untouched user's token still works");
    list_leads(&crm_direct, &bystander, true)
        .await
        .expect("an untouched user's token still works at crm");

    // An edge replica started after all that learns the revocations on its way up.
    let mut config = stack.edge_config.clone();
    config.grpc_addr = "127.0.0.1:0".parse().unwrap();
    let replica = fusion_edge::Edge::build(
        config,
        fusion_testkit::bind_ephemeral().await,
        fusion_testkit::bind_ephemeral().await,
    )
    .await
    .expect("a second edge starts");
    let replica_channel = fusion_testkit::connect_channel(replica.grpc_addr()).await;
    for (what, session) in [("deactivated", &deactivated), ("deleted", &deleted)] {
        refused(
            &format!("{what} (new edge replica)"),
            &replica_channel,
            session,
            false,
        )
        .await;
    }
    list_leads(&replica_channel, &bystander, false)
        .await
        .expect("the new replica takes a good token");
    replica.stop().await.unwrap();
}

#[tokio::test]
async fn changing_a_roles_permissions_revokes_its_holders_tokens() {
    let stack = Stack::spawn_with_events(|_| {}).await;
    let crm_direct = fusion_testkit::connect_channel(stack.crm.grpc_addr()).await;
    let admin = stack.login("admin@acme.test").await.unwrap().token;
    let role = RoleServiceClient::new(stack.channel.clone())
        .create_role(with_token(
            &admin,
            pb::CreateRoleRequest {
                role: Some(pb::Role {
                    name: "lead_readers".into(),
                    permissions: vec!["crm.leads.read".into(), "crm.contacts.read".into()],
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .expect("role created")
        .into_inner();
    let viewer = role_id(&stack, &admin, "viewer").await;
    let holder = user_with_role(&stack, &admin, "holder@acme.test", role.id).await;
    let other = user_with_role(&stack, &admin, "other@acme.test", viewer).await;
    list_leads(&stack.channel, &holder, false)
        .await
        .expect("works before");

    RoleServiceClient::new(stack.channel.clone())
        .update_role(with_token(
            &admin,
            pb::UpdateRoleRequest {
                role: Some(pb::Role {
                    id: role.id,
                    permissions: vec!["crm.leads.read".into()],
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["permissions".into()],
                }),
            },
        ))
        .await
        .expect("permissions reduced");
    refused_everywhere(&stack, &crm_direct, "role changed", &holder).await;
    list_leads(&stack.channel, &other, false)
        .await
        .expect("a holder of another role keeps its token");
}

#[tokio::test]
async fn an_availability_stream_ends_when_its_token_is_revoked_or_expires() {
    let stack = Stack::spawn_with_events(|_| {}).await;
    let admin = stack.login("admin@acme.test").await.unwrap().token;
    let seeded = fusion_stack::seed::property(stack.channel.clone(), &admin)
        .await
        .unwrap();
    let viewer = role_id(&stack, &admin, "viewer").await;
    let watcher = user_with_role(&stack, &admin, "watcher@acme.test", viewer).await;
    let watch = |token: &str| {
        let mut lots = LotServiceClient::new(stack.channel.clone());
        let req = with_token(
            token,
            ppb::WatchLotAvailabilityRequest {
                project_id: seeded.project_id,
            },
        );
        async move {
            lots.watch_lot_availability(req)
                .await
                .map(|r| r.into_inner())
        }
    };

    let mut stream = watch(&watcher.access).await.expect("the stream opens");
    UserServiceClient::new(stack.channel.clone())
        .deactivate_user(with_token(
            &admin,
            pb::DeactivateUserRequest {
                id: watcher.user_id,
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    let ended = tokio::time::timeout(DEADLINE, stream.next())
        .await
        .expect("the stream ends within the deadline")
        .expect("with a status")
        .expect_err("an error, not an event");
    assert_eq!(ended.code(), Code::Unauthenticated);
    assert_eq!(
        ended.get_details_error_info().unwrap().reason,
        "TOKEN_REVOKED"
    );

    // A token that expires two seconds from now, signed with identity's own key.
    let keys =
        fusion_identity::auth::keys::KeyRing::load_or_create(&stack.db.app_db("identity").await)
            .await
            .unwrap();
    let admin_session = sign_in(&stack, "admin@acme.test").await;
    let mut claims = fusion_tenancy::Claims::new(
        &fusion_tenancy::JwtConfig::default(),
        admin_session.tenant_id,
        admin_session.user_id,
        vec!["admin".into()],
        vec!["property.lots.read".into()],
        Duration::from_secs(2),
    );
    claims.exp = claims.iat + 2;
    let short = keys.signer().sign(&claims);
    let mut stream = watch(&short).await.expect("the stream opens");
    let ended = tokio::time::timeout(DEADLINE, stream.next())
        .await
        .expect("the stream ends when the token expires")
        .expect("with a status")
        .expect_err("an error, not an event");
    assert_eq!(ended.code(), Code::Unauthenticated);
    assert_eq!(
        ended.get_details_error_info().unwrap().reason,
        "TOKEN_EXPIRED"
    );
}

#[tokio::test]
async fn making_a_tenant_inactive_revokes_its_tokens_and_spares_other_tenants() {
    let stack = Stack::spawn_with_events(|_| {}).await;
    let crm_direct = fusion_testkit::connect_channel(stack.crm.grpc_addr()).await;
    let acme = sign_in(&stack, "admin@acme.test").await;
    let globex = sign_in(&stack, "admin@globex.test").await;
    list_leads(&stack.channel, &acme, false)
        .await
        .expect("works before");
    let platform = stack.login("ops@platform.test").await.unwrap().token;

    fusion_proto::identity::v1::tenant_service_client::TenantServiceClient::new(
        stack.channel.clone(),
    )
    .update_tenant(with_token(
        &platform,
        pb::UpdateTenantRequest {
            tenant: Some(pb::Tenant {
                id: acme.tenant_id,
                subscription_status: "inactive".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["subscription_status".into()],
            }),
        },
    ))
    .await
    .expect("the platform operator suspends acme");

    refused_everywhere(&stack, &crm_direct, "tenant made inactive", &acme).await;
    list_leads(&stack.channel, &globex, false)
        .await
        .expect("another tenant keeps its tokens");
}
