//! Service credentials against a real identity: a consumer acts in each event's tenant
//! as its service's system account there; tokens are cached per tenant, fetched once
//! at a time, renewed before they expire, in a bounded cache; a consumer that cannot
//! get one retries the event instead of dead-lettering it.

use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;

use fusion_db::TenantTx;
use fusion_events::{ConsumerConfig, CredentialsError, Delivery, Handler, ServiceCredentials};
use fusion_identity::config::parse_platform_service_accounts;
use fusion_identity::{Application, IdentityConfig};
use fusion_proto::identity::v1 as idpb;
use fusion_proto::identity::v1::service_account_service_client::ServiceAccountServiceClient;
use fusion_proto::identity::v1::user_service_client::UserServiceClient;
use fusion_service::ServiceConfig;
use fusion_testkit::{TestDatabase, bind_ephemeral, connect_channel};

use crate::helpers::*;

const SECRET: &str = "consumer-test-secret-0123456789abcdefgh";
const CLIENT_ID: &str = "sa_platform_billing";
const PASSWORD: &str = "correct horse battery";

/// Identity with a platform service account `billing`, and tenants `acme`, `globex`
/// and `initech`.
struct Identity {
    app: Application,
    _db: TestDatabase,
    channel: Channel,
    tenants: [i64; 3],
}

impl Identity {
    async fn start(access_token_ttl: Duration) -> Self {
        let db =
            TestDatabase::create(&[(fusion_identity::SCHEMA, &fusion_identity::MIGRATOR)]).await;
        let mut config =
            IdentityConfig::with_defaults(ServiceConfig::local("identity", db.app_url("identity")));
        config.access_token_ttl = access_token_ttl;
        config.platform_service_accounts =
            parse_platform_service_accounts(&format!("billing:{SECRET}")).unwrap();
        let app = Application::build(config, bind_ephemeral().await, bind_ephemeral().await)
            .await
            .expect("identity starts");
        let idb = &app.state().db;
        fusion_identity::bootstrap::ensure_platform(idb, "ops@platform.test", PASSWORD)
            .await
            .unwrap();
        fusion_identity::bootstrap::ensure_platform_services(
            idb,
            &app.state().config.platform_service_accounts,
        )
        .await
        .unwrap();
        let mut tenants = [0; 3];
        for (i, slug) in ["acme", "globex", "initech"].into_iter().enumerate() {
            tenants[i] = fusion_identity::bootstrap::ensure_tenant(
                idb,
                slug,
                slug,
                &format!("admin@{slug}.test"),
                PASSWORD,
            )
            .await
            .unwrap();
        }
        let channel = connect_channel(app.grpc_addr()).await;
        Self {
            app,
            _db: db,
            channel,
            tenants,
        }
    }

    fn credentials(&self) -> ServiceCredentials {
        ServiceCredentials::new(self.channel.clone(), CLIENT_ID, SECRET)
    }

    /// A request as `token` of `tenant` would send it through the edge.
    fn req<T>(token: &str, tenant: i64, message: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(message);
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        req.metadata_mut()
            .insert("x-tenant-id", tenant.to_string().parse().unwrap());
        req
    }

    /// Logs in as `slug`'s admin: their token.
    async fn admin(&self, slug: &str) -> String {
        fusion_proto::identity::v1::auth_service_client::AuthServiceClient::new(
            self.channel.clone(),
        )
        .login(idpb::LoginRequest {
            email: format!("admin@{slug}.test"),
            password: PASSWORD.into(),
        })
        .await
        .expect("admin logs in")
        .into_inner()
        .access_token
    }

    async fn set_active(&self, slug: &str, tenant: i64, account_id: i64, active: bool) {
        let token = self.admin(slug).await;
        let mut accounts = ServiceAccountServiceClient::new(self.channel.clone());
        if active {
            accounts
                .activate_service_account(Self::req(
                    &token,
                    tenant,
                    idpb::ActivateServiceAccountRequest {
                        id: account_id,
                        request_id: String::new(),
                    },
                ))
                .await
                .expect("activated");
        } else {
            accounts
                .deactivate_service_account(Self::req(
                    &token,
                    tenant,
                    idpb::DeactivateServiceAccountRequest {
                        id: account_id,
                        request_id: String::new(),
                    },
                ))
                .await
                .expect("deactivated");
        }
    }
}

/// Records the actor each event was applied as, and proves its token works by
/// listing the tenant's users with it, as a consumer calling identity would.
struct Actor {
    identity: Channel,
}

impl Handler for Actor {
    async fn handle(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        let caller = event
            .caller
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no caller"))?;
        UserServiceClient::new(self.identity.clone())
            .list_users(Identity::req(
                &caller.access_token,
                tx.tenant_id(),
                idpb::ListUsersRequest::default(),
            ))
            .await?;
        sqlx::query(
            "INSERT INTO property.test_effects (tenant_id, event_id, deal_id)
             VALUES ($1, $2::uuid, $3)",
        )
        .bind(tx.tenant_id())
        .bind(&event.envelope.event_id)
        .bind(event.actor_id().unwrap_or(0))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Starts [`Actor`] as a durable consumer with `config`, acting with `credentials`.
async fn spawn_actor(
    h: &Harness,
    identity: &Identity,
    config: ConsumerConfig,
    credentials: ServiceCredentials,
) {
    fusion_events::consumer::Consumer::new(
        h.consumer.clone(),
        h.client().await,
        config,
        Actor {
            identity: identity.channel.clone(),
        },
        h.metrics.clone(),
    )
    .with_credentials(credentials)
    .spawn(h.stop());
}

/// The actor recorded for each event of `tenant`.
async fn actors(h: &Harness, tenant: i64) -> Vec<i64> {
    sqlx::query_scalar("SELECT deal_id FROM property.test_effects WHERE tenant_id = $1 ORDER BY id")
        .bind(tenant)
        .fetch_all(&h.admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_consumer_with_credentials_acts_in_each_events_tenant_as_its_system_account() {
    let identity = Identity::start(Duration::from_secs(900)).await;
    let [acme, globex, _] = identity.tenants;
    let h = Harness::new().await;
    let credentials = identity.credentials();
    h.spawn_relay().await;
    spawn_actor(
        &h,
        &identity,
        h.consumer_config("billing-test"),
        credentials.clone(),
    )
    .await;
    for deal in 1..=3 {
        h.win(acme, deal, "won").await;
        h.win(globex, deal, "won").await;
    }
    eventually(Duration::from_secs(15), "all six applied", || async {
        h.effects().await == (6, 1)
    })
    .await;

    // Each tenant's events name that tenant's system account, the one identity lists.
    for (slug, tenant) in [("acme", acme), ("globex", globex)] {
        let token = identity.admin(slug).await;
        let listed = ServiceAccountServiceClient::new(identity.channel.clone())
            .list_service_accounts(Identity::req(
                &token,
                tenant,
                idpb::ListServiceAccountsRequest {
                    filter: "name = \"billing\"".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .service_accounts;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(actors(&h, tenant).await, vec![listed[0].id; 3], "{slug}");
    }
    assert_ne!(actors(&h, acme).await, actors(&h, globex).await);
    // One token per tenant, reused for the tenant's later events.
    assert_eq!(credentials.tokens_issued(), 2);
    assert_eq!(h.metrics.failures("billing-test"), 0);
}

#[tokio::test]
async fn an_event_whose_tenant_gives_no_token_waits_and_is_never_dead_lettered() {
    let identity = Identity::start(Duration::from_secs(900)).await;
    let [acme, _, _] = identity.tenants;
    // The system account exists (a first token) and the tenant's admin deactivates it.
    let system = identity.credentials().for_tenant(acme).await.unwrap();
    identity
        .set_active("acme", acme, system.account_id, false)
        .await;

    let h = Harness::new().await;
    let mut config = h.consumer_config("billing-waits");
    config.max_deliver = 2;
    h.spawn_relay().await;
    spawn_actor(&h, &identity, config, identity.credentials()).await;
    h.win(acme, 7, "won").await;
    eventually(
        Duration::from_secs(20),
        "delivered well past max_deliver",
        || async { h.metrics.failures("billing-waits") >= 5 },
    )
    .await;
    assert_eq!(h.effects().await, (0, 0));
    assert_eq!(
        h.scalar("SELECT count(*) FROM property.dead_letters").await,
        0
    );
    assert_eq!(h.metrics.dead_letters("billing-waits"), 0);
    assert_eq!(
        h.scalar("SELECT count(*) FROM property.inbox_events").await,
        0
    );

    // Active again: the same event applies, once, as the system account.
    identity
        .set_active("acme", acme, system.account_id, true)
        .await;
    eventually(
        Duration::from_secs(20),
        "applied once reactivated",
        || async { h.effects().await == (1, 1) },
    )
    .await;
    assert_eq!(actors(&h, acme).await, [system.account_id]);
    assert_eq!(h.metrics.dead_letters("billing-waits"), 0);
}

#[tokio::test]
async fn an_event_of_a_tenant_identity_does_not_know_is_dead_lettered_and_later_ones_apply() {
    let identity = Identity::start(Duration::from_secs(900)).await;
    let [acme, _, _] = identity.tenants;
    let h = Harness::new().await;
    let mut config = h.consumer_config("billing-unknown");
    config.max_deliver = 2;
    h.spawn_relay().await;
    spawn_actor(&h, &identity, config, identity.credentials()).await;
    let unknown = 987_654;
    h.win(unknown, 1, "won").await;
    h.win(acme, 2, "won").await;
    eventually(
        Duration::from_secs(20),
        "the unknown tenant's event dead-lettered, acme's applied",
        || async { h.effects().await == (1, 1) && h.metrics.dead_letters("billing-unknown") == 1 },
    )
    .await;
    assert_eq!(
        h.scalar(&format!(
            "SELECT count(*) FROM property.dead_letters WHERE tenant_id = {unknown} AND attempts = 2"
        ))
        .await,
        1
    );
    assert_eq!(actors(&h, unknown).await, Vec::<i64>::new());
    assert_eq!(actors(&h, acme).await.len(), 1);
}

#[tokio::test]
async fn tokens_are_cached_per_tenant_fetched_once_at_a_time_and_renewed_before_they_expire() {
    // Three-second tokens with a one-second margin: each is used for two seconds.
    let identity = Identity::start(Duration::from_secs(3)).await;
    let [acme, globex, _] = identity.tenants;
    let credentials = identity.credentials().with_margin(Duration::from_secs(1));

    let callers = futures::future::join_all((0..16).map(|_| credentials.for_tenant(acme))).await;
    let first = callers[0].as_ref().unwrap().clone();
    assert!(
        callers
            .iter()
            .all(|c| c.as_ref().is_ok_and(|c| *c == first))
    );
    assert_eq!(credentials.tokens_issued(), 1, "sixteen callers, one token");
    assert_eq!(credentials.for_tenant(acme).await.unwrap(), first);
    assert_eq!(credentials.tokens_issued(), 1);
    // Clones share the cache.
    assert_eq!(credentials.clone().for_tenant(acme).await.unwrap(), first);

    let other = credentials.for_tenant(globex).await.unwrap();
    assert_ne!(other.account_id, first.account_id);
    assert_eq!(credentials.tokens_issued(), 2);

    // Before acme's token expires a new one replaces it, for the same account.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let renewed = loop {
        let current = credentials.for_tenant(acme).await.unwrap();
        if current.access_token != first.access_token {
            break current;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no renewed token within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(renewed.account_id, first.account_id);
    assert!(credentials.tokens_issued() >= 3);
    // The renewed token works: identity accepts it.
    UserServiceClient::new(identity.channel.clone())
        .list_users(Identity::req(
            &renewed.access_token,
            acme,
            idpb::ListUsersRequest::default(),
        ))
        .await
        .expect("the renewed token is accepted");
}

#[tokio::test]
async fn the_cache_keeps_the_most_recently_used_tenants_only() {
    let identity = Identity::start(Duration::from_secs(900)).await;
    let [acme, globex, initech] = identity.tenants;
    let credentials = identity.credentials().with_capacity(2);
    credentials.for_tenant(acme).await.unwrap();
    credentials.for_tenant(globex).await.unwrap();
    credentials.for_tenant(acme).await.unwrap();
    assert_eq!(credentials.tokens_issued(), 2);
    // A third tenant pushes out the least recently used: globex.
    credentials.for_tenant(initech).await.unwrap();
    assert_eq!(credentials.cached_tenants(), 2);
    assert_eq!(credentials.tokens_issued(), 3);
    credentials.for_tenant(acme).await.unwrap();
    assert_eq!(credentials.tokens_issued(), 3, "acme was kept");
    credentials.for_tenant(globex).await.unwrap();
    assert_eq!(credentials.tokens_issued(), 4, "globex was forgotten");
    assert_eq!(credentials.cached_tenants(), 2);
}

#[tokio::test]
async fn refusals_and_an_identity_that_does_not_answer_are_errors_not_callers() {
    let identity = Identity::start(Duration::from_secs(900)).await;
    let [acme, _, _] = identity.tenants;
    let credentials = identity.credentials();
    assert!(matches!(
        credentials.for_tenant(0).await,
        Err(CredentialsError::NoTenant(0))
    ));
    let unknown = credentials.for_tenant(999_999).await.unwrap_err();
    assert_eq!(unknown.code(), Some(Code::NotFound), "{unknown}");
    let wrong = ServiceCredentials::new(identity.channel.clone(), CLIENT_ID, "not-the-secret")
        .for_tenant(acme)
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some(Code::Unauthenticated), "{wrong}");
    assert!(!wrong.to_string().contains(SECRET));
    // A failure leaves nothing cached: the next call asks again and succeeds.
    assert_eq!(credentials.tokens_issued(), 0);
    credentials.for_tenant(acme).await.unwrap();
    assert_eq!(credentials.tokens_issued(), 1);

    // A server that accepts connections and never answers: the call times out.
    let silent = bind_ephemeral().await;
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", silent.local_addr().unwrap()))
            .unwrap()
            .connect_lazy();
    let err = ServiceCredentials::new(channel, CLIENT_ID, SECRET)
        .with_timeout(Duration::from_millis(300))
        .for_tenant(acme)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CredentialsError::Timeout { tenant_id, .. } if tenant_id == acme),
        "{err}"
    );
    drop(silent);
    identity.app.stop().await.unwrap();
}
