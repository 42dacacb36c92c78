//! Identity, property, crm, finance, ai-marketing and the edge, in-process on ephemeral
//! ports, over a fresh database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::Channel;
use tonic::{Request, Status};

use fusion_edge::{Edge, EdgeConfig, Route};
use fusion_identity::{Application, IdentityConfig, MIGRATOR, SCHEMA};
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::auth_service_client::AuthServiceClient;
use fusion_proto::identity::v1::tenant_service_client::TenantServiceClient;
use fusion_service::ServiceConfig;
use fusion_testkit::{PrivateNats, TestDatabase, bind_ephemeral, connect_channel};

/// The demo password used by these tests.
pub const PASSWORD: &str = "correct horse battery";

/// The secret of property's platform service account in a stack with events (crm's
/// is [`CRM_SERVICE_SECRET`]): their consumers act as their system accounts.
pub const PROPERTY_SERVICE_SECRET: &str = "e2e-property-service-secret-0123456789ab";

/// The secret of crm's platform service account in a stack with events.
pub const CRM_SERVICE_SECRET: &str = "e2e-crm-service-secret-0123456789abcdef";

/// The secret of ai-marketing's platform service account in a stack with events.
pub const AIMARKETING_SERVICE_SECRET: &str = "e2e-ai-marketing-service-secret-0123456789";

/// A running stack.
pub struct Stack {
    /// The database.
    pub db: TestDatabase,
    /// Identity, while it runs.
    pub identity: Option<Application>,
    /// Where identity listens (kept across restarts).
    pub identity_addr: SocketAddr,
    /// Property, verifying tokens with identity's JWKS.
    pub property: fusion_property::Application,
    /// Crm, checking references with identity and property.
    pub crm: fusion_crm::Application,
    /// Finance, checking references with identity, crm and property.
    pub finance: fusion_finance::Application,
    /// Ai-marketing, reading crm and property as the caller (and, with events,
    /// measuring campaigns from crm's events).
    pub aimarketing: fusion_aimarketing::Application,
    /// The edge.
    pub edge: Edge,
    /// A channel to the edge.
    pub channel: Channel,
    /// The private NATS JetStream of a stack spawned with events.
    pub nats: Option<PrivateNats>,
    /// How the edge was configured (another replica can be started with it).
    pub edge_config: EdgeConfig,
}

/// Tokens of a logged-in user.
#[derive(Clone, Debug)]
pub struct Login {
    /// Access token.
    pub token: String,
    /// Tenant.
    pub tenant_id: i64,
    /// User.
    pub user_id: i64,
}

/// The secret the edge signs client addresses with and identity verifies them with.
pub const FORWARDING_SECRET: &str = "e2e-forwarding-secret-0123456789abcdef";

fn forwarding_key() -> fusion_tenancy::ForwardingKey {
    fusion_tenancy::ForwardingKey::new(FORWARDING_SECRET).expect("a long enough secret")
}

fn identity_config(db: &TestDatabase, nats_url: Option<String>) -> IdentityConfig {
    let mut service = ServiceConfig::local("identity", db.app_url("identity"));
    if nats_url.is_some() {
        // Identity relays its token revocations as its housekeeping role.
        service.migration_database_url = Some(db.owner_url.clone());
        service.jobs_database_url = Some(db.jobs_url("identity"));
        service.nats_url = nats_url;
    }
    service.shutdown_deadline = Duration::from_secs(2);
    let mut config = IdentityConfig::with_defaults(service);
    config.forwarding_key = Some(forwarding_key());
    config
}

/// Starts identity on `listener`.
pub async fn start_identity(db: &TestDatabase, listener: tokio::net::TcpListener) -> Application {
    start_identity_with(db, listener, None).await
}

/// Starts identity on `listener`, relaying its events to `nats_url` if given.
pub async fn start_identity_with(
    db: &TestDatabase,
    listener: tokio::net::TcpListener,
    nats_url: Option<String>,
) -> Application {
    Application::build(
        identity_config(db, nats_url),
        listener,
        bind_ephemeral().await,
    )
    .await
    .expect("identity starts")
}

impl Stack {
    /// Identity plus an edge configured by `configure`, with tenants acme and globex.
    pub async fn spawn(configure: impl FnOnce(&mut EdgeConfig)) -> Stack {
        Self::spawn_with(configure, false).await
    }

    /// [`Stack::spawn`] with integration events: a private NATS JetStream, crm and
    /// property relaying their outboxes (as the owner role) and consuming each other's,
    /// with platform service accounts so that their consumers act as system accounts.
    pub async fn spawn_with_events(configure: impl FnOnce(&mut EdgeConfig)) -> Stack {
        Self::spawn_with(configure, true).await
    }

    async fn spawn_with(configure: impl FnOnce(&mut EdgeConfig), events: bool) -> Stack {
        let nats = events.then(PrivateNats::start);
        let nats_url = nats.as_ref().map(PrivateNats::url);
        let db = TestDatabase::create(&[
            (SCHEMA, &MIGRATOR),
            (fusion_property::SCHEMA, &fusion_property::MIGRATOR),
            (fusion_crm::SCHEMA, &fusion_crm::MIGRATOR),
            (fusion_finance::SCHEMA, &fusion_finance::MIGRATOR),
            (fusion_aimarketing::SCHEMA, &fusion_aimarketing::MIGRATOR),
        ])
        .await;
        let listener = bind_ephemeral().await;
        let identity_addr = listener.local_addr().expect("bound");
        let identity = start_identity_with(&db, listener, nats_url.clone()).await;
        fusion_identity::bootstrap::ensure_platform(
            &identity.state().db,
            "ops@platform.test",
            PASSWORD,
        )
        .await
        .expect("platform bootstrap");
        // The consuming services' platform accounts, as identity provisions them from
        // IDENTITY_PLATFORM_SERVICE_ACCOUNTS.
        let service_credentials = |service: &str, secret: &str| {
            events.then(|| fusion_service::config::ClientCredentials {
                client_id: fusion_service::config::ClientCredentials::platform_client_id(service),
                client_secret: secret.to_owned(),
            })
        };
        if events {
            let accounts = fusion_identity::config::parse_platform_service_accounts(&format!(
                "crm:{CRM_SERVICE_SECRET},property:{PROPERTY_SERVICE_SECRET},{}:{AIMARKETING_SERVICE_SECRET}",
                fusion_aimarketing::config::SERVICE
            ))
            .expect("valid platform service accounts");
            fusion_identity::bootstrap::ensure_platform_services(&identity.state().db, &accounts)
                .await
                .expect("platform service accounts");
        }
        let identity_channel =
            tonic::transport::Endpoint::from_shared(format!("http://{identity_addr}"))
                .expect("a valid address")
                .connect_lazy();
        let mut property_service = ServiceConfig::local("property", db.app_url("property"));
        property_service.nats_url = nats_url.clone();
        if events {
            // Property's relay (lot.status_changed, lot.sale_refused) reads every
            // tenant's outbox as its housekeeping role, as crm's does.
            property_service.migration_database_url = Some(db.owner_url.clone());
            property_service.jobs_database_url = Some(db.jobs_url("property"));
        }
        let mut property_config = fusion_property::PropertyConfig::with_defaults(property_service);
        property_config.identity_url = format!("http://{identity_addr}");
        property_config.service_credentials =
            service_credentials("property", PROPERTY_SERVICE_SECRET);
        property_config.media_store = fusion_property::media_store::StoreConfig::Local {
            dir: std::env::temp_dir().join("fusion-e2e-media").join(&db.name),
        };
        // Crm starts after property (it checks lots with property) but property asks
        // crm about the deals holds and reservations are for: crm's port is bound first.
        let crm_listener = bind_ephemeral().await;
        let crm_channel = tonic::transport::Endpoint::from_shared(format!(
            "http://{}",
            crm_listener.local_addr().expect("bound")
        ))
        .expect("a valid address")
        .connect_lazy();
        let property = fusion_property::Application::build(
            property_config,
            Arc::new(fusion_tenancy::IdentityJwks::new(identity_channel.clone())),
            crm_channel.clone(),
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("property starts");
        let property_channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", property.grpc_addr()))
                .expect("a valid address")
                .connect_lazy();
        let mut crm_service = ServiceConfig::local("crm", db.app_url("crm"));
        if events {
            // The relay reads every tenant's outbox as crm's housekeeping role.
            crm_service.migration_database_url = Some(db.owner_url.clone());
            crm_service.jobs_database_url = Some(db.jobs_url("crm"));
            crm_service.nats_url = nats_url.clone();
        }
        let mut crm_config = fusion_crm::CrmConfig::with_defaults(crm_service);
        crm_config.identity_url = format!("http://{identity_addr}");
        crm_config.service_credentials = service_credentials("crm", CRM_SERVICE_SECRET);
        let crm = fusion_crm::Application::build(
            crm_config,
            Arc::new(fusion_tenancy::IdentityJwks::new(identity_channel.clone())),
            identity_channel.clone(),
            property_channel.clone(),
            crm_listener,
            bind_ephemeral().await,
        )
        .await
        .expect("crm starts");
        let finance = fusion_finance::Application::build(
            fusion_finance::FinanceConfig::with_defaults(ServiceConfig::local(
                "finance",
                db.app_url("finance"),
            )),
            Arc::new(fusion_tenancy::IdentityJwks::new(identity_channel.clone())),
            fusion_finance::Peers {
                identity: identity_channel.clone(),
                crm: crm_channel.clone(),
                property: property_channel.clone(),
            },
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("finance starts");
        let mut aimarketing_service =
            ServiceConfig::local("ai-marketing", db.app_url("ai_marketing"));
        if events {
            // Its consumer of crm's lead and deal events writes as its application
            // role, and acts in each tenant as its system account.
            aimarketing_service.nats_url = nats_url.clone();
        }
        let mut aimarketing_config =
            fusion_aimarketing::AiMarketingConfig::with_defaults(aimarketing_service);
        aimarketing_config.service_credentials = service_credentials(
            fusion_aimarketing::config::SERVICE,
            AIMARKETING_SERVICE_SECRET,
        );
        let aimarketing = fusion_aimarketing::Application::build(
            aimarketing_config,
            Arc::new(fusion_tenancy::IdentityJwks::new(identity_channel.clone())),
            fusion_aimarketing::Peers {
                identity: identity_channel,
                crm: crm_channel,
                property: property_channel,
            },
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("ai-marketing starts");
        let mut config = EdgeConfig::new(vec![
            Route {
                package: "fusion.identity.v1".into(),
                upstream: format!("http://{identity_addr}"),
            },
            Route {
                package: "fusion.property.v1".into(),
                upstream: format!("http://{}", property.grpc_addr()),
            },
            Route {
                package: "fusion.crm.v1".into(),
                upstream: format!("http://{}", crm.grpc_addr()),
            },
            Route {
                package: "fusion.finance.v1".into(),
                upstream: format!("http://{}", finance.grpc_addr()),
            },
            Route {
                package: "fusion.aimarketing.v1".into(),
                upstream: format!("http://{}", aimarketing.grpc_addr()),
            },
        ]);
        config.probe_interval = Duration::from_millis(200);
        config.eject_after_failures = 2;
        config.eject_cooldown = Duration::from_millis(500);
        config.drain = Duration::ZERO;
        config.forwarding_key = Some(forwarding_key());
        // With events the edge follows identity's token revocations.
        config.nats_url = nats_url;
        configure(&mut config);
        let edge_config = config.clone();
        let edge = Edge::build(config, bind_ephemeral().await, bind_ephemeral().await)
            .await
            .expect("edge starts");
        let channel = connect_channel(edge.grpc_addr()).await;
        let stack = Stack {
            db,
            identity: Some(identity),
            identity_addr,
            property,
            crm,
            finance,
            aimarketing,
            edge,
            channel,
            nats,
            edge_config,
        };
        let platform = stack
            .login("ops@platform.test")
            .await
            .expect("platform operator logs in");
        for slug in ["acme", "globex"] {
            TenantServiceClient::new(stack.channel.clone())
                .create_tenant(stack.authed(
                    &platform,
                    pb::CreateTenantRequest {
                        tenant: Some(pb::Tenant {
                            name: format!("{slug} homes"),
                            slug: slug.into(),
                            subscription_status: "active".into(),
                            ..Default::default()
                        }),
                        admin_email: format!("admin@{slug}.test"),
                        admin_name: format!("{slug} admin"),
                        admin_password: PASSWORD.into(),
                        request_id: String::new(),
                    },
                ))
                .await
                .expect("tenant created through the edge");
        }
        stack
    }

    /// `n` more tenants (`tenant-1` …), each with an admin, logged in through the edge.
    ///
    /// # Panics
    /// When a tenant cannot be created or its admin cannot log in.
    pub async fn tenants(&self, n: usize) -> Vec<Login> {
        let platform = self
            .login("ops@platform.test")
            .await
            .expect("platform operator logs in");
        let mut admins = Vec::with_capacity(n);
        for i in 1..=n {
            let slug = format!("tenant-{i}");
            TenantServiceClient::new(self.channel.clone())
                .create_tenant(self.authed(
                    &platform,
                    pb::CreateTenantRequest {
                        tenant: Some(pb::Tenant {
                            name: format!("Tenant {i}"),
                            slug: slug.clone(),
                            subscription_status: "active".into(),
                            ..Default::default()
                        }),
                        admin_email: format!("admin@{slug}.test"),
                        admin_name: format!("{slug} admin"),
                        admin_password: PASSWORD.into(),
                        request_id: String::new(),
                    },
                ))
                .await
                .expect("tenant created through the edge");
            admins.push(
                self.login(&format!("admin@{slug}.test"))
                    .await
                    .expect("the tenant's admin logs in"),
            );
        }
        admins
    }

    /// Logs in through the edge.
    pub async fn login(&self, email: &str) -> Result<Login, Status> {
        let r = AuthServiceClient::new(self.channel.clone())
            .login(pb::LoginRequest {
                email: email.into(),
                password: PASSWORD.into(),
            })
            .await?
            .into_inner();
        Ok(Login {
            token: r.access_token,
            tenant_id: r.tenant_id,
            user_id: r.user_id,
        })
    }

    /// A request with only the bearer token, as a client of the edge sends it.
    pub fn authed<T>(&self, login: &Login, message: T) -> Request<T> {
        with_token(&login.token, message)
    }
}

/// A request carrying `token` as its bearer token.
pub fn with_token<T>(token: &str, message: T) -> Request<T> {
    let mut req = Request::new(message);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("a token is ASCII"),
    );
    req
}
