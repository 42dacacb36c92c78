//! Spawning identity for a test and acting as its users.

use tonic::transport::Channel;
use tonic::{Request, Status};

use fusion_identity::{Application, IdentityConfig, MIGRATOR, SCHEMA};
use fusion_proto::identity::v1 as pb;
use fusion_proto::identity::v1::{
    auth_service_client::AuthServiceClient, plan_service_client::PlanServiceClient,
    role_service_client::RoleServiceClient,
    service_account_service_client::ServiceAccountServiceClient,
    tenant_service_client::TenantServiceClient, user_service_client::UserServiceClient,
};
use fusion_service::ServiceConfig;
use fusion_testkit::{TestDatabase, bind_ephemeral, connect_channel};

pub const PLATFORM_EMAIL: &str = "ops@platform.test";
pub const PASSWORD: &str = "correct horse battery";

/// A logged-in user.
#[derive(Clone, Debug)]
pub struct Session {
    pub tenant_id: i64,
    pub user_id: i64,
    pub access_token: String,
    pub refresh_token: String,
}

pub struct TestApp {
    pub app: Application,
    /// The test's database: its administrator's URL reads every row, its owner URL
    /// runs the housekeeping a test checks.
    pub db: TestDatabase,
    pub channel: Channel,
    pub platform: Session,
}

pub fn test_config(db: &TestDatabase) -> IdentityConfig {
    let mut config =
        IdentityConfig::with_defaults(ServiceConfig::local("identity", db.app_url("identity")));
    // Tests share two busy cores: a hash waits its turn rather than be refused, unless
    // a test is about refusing.
    config.hashing.max_wait = std::time::Duration::from_secs(30);
    config
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut IdentityConfig)) -> TestApp {
        let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
        let mut config = test_config(&db);
        configure(&mut config);
        let app = Application::build(config, bind_ephemeral().await, bind_ephemeral().await)
            .await
            .expect("identity starts");
        fusion_identity::bootstrap::ensure_platform(&app.state().db, PLATFORM_EMAIL, PASSWORD)
            .await
            .expect("platform bootstrap");
        // As `bootstrap-platform` does after creating the platform tenant.
        fusion_identity::bootstrap::ensure_platform_services(
            &app.state().db,
            &app.state().config.platform_service_accounts,
        )
        .await
        .expect("platform service accounts provisioned");
        let channel = connect_channel(app.grpc_addr()).await;
        let mut test = TestApp {
            app,
            db,
            channel,
            platform: empty_session(),
        };
        test.platform = test
            .login(PLATFORM_EMAIL, PASSWORD)
            .await
            .expect("platform operator logs in");
        test
    }

    /// A channel to identity whose connection comes from `local` (any 127.0.0.0/8
    /// address on Linux): a caller at another source address, without the edge.
    pub async fn channel_from(&self, local: &str) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.app.grpc_addr()))
            .expect("a valid address")
            .local_address(Some(local.parse().expect("an IP address")))
            .connect()
            .await
            .expect("identity answers from another local address")
    }

    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel.clone())
    }
    pub fn tenants(&self) -> TenantServiceClient<Channel> {
        TenantServiceClient::new(self.channel.clone())
    }
    pub fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(self.channel.clone())
    }
    pub fn roles(&self) -> RoleServiceClient<Channel> {
        RoleServiceClient::new(self.channel.clone())
    }
    pub fn plans(&self) -> PlanServiceClient<Channel> {
        PlanServiceClient::new(self.channel.clone())
    }
    pub fn service_accounts(&self) -> ServiceAccountServiceClient<Channel> {
        ServiceAccountServiceClient::new(self.channel.clone())
    }

    /// A service account's session from IssueServiceToken (no refresh token).
    pub async fn service_token(&self, client_id: &str, secret: &str) -> Result<Session, Status> {
        let r = self
            .auth()
            .issue_service_token(pb::IssueServiceTokenRequest {
                client_id: client_id.into(),
                client_secret: secret.into(),
                tenant_id: 0,
            })
            .await?
            .into_inner();
        Ok(Session {
            tenant_id: r.tenant_id,
            user_id: r.service_account_id,
            access_token: r.access_token,
            refresh_token: String::new(),
        })
    }

    /// IssueServiceToken for `tenant_id` (0: the account's own tenant).
    pub async fn token_for(
        &self,
        client_id: &str,
        secret: &str,
        tenant_id: i64,
    ) -> Result<pb::IssueServiceTokenResponse, Status> {
        Ok(self
            .auth()
            .issue_service_token(pb::IssueServiceTokenRequest {
                client_id: client_id.into(),
                client_secret: secret.into(),
                tenant_id,
            })
            .await?
            .into_inner())
    }

    /// Creates a service account holding the roles named `roles` in the session's
    /// tenant, with one secret: the account, its client id and the secret.
    pub async fn create_service_account(
        &self,
        admin: &Session,
        name: &str,
        roles: &[&str],
    ) -> (pb::ServiceAccount, String, String) {
        let role_ids = self.role_ids(admin, roles).await;
        let account = self
            .service_accounts()
            .create_service_account(as_user(
                admin,
                pb::CreateServiceAccountRequest {
                    service_account: Some(pb::ServiceAccount {
                        name: name.into(),
                        role_ids,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("service account created")
            .into_inner();
        let secret = self
            .service_accounts()
            .create_service_account_secret(as_user(
                admin,
                pb::CreateServiceAccountSecretRequest {
                    service_account_id: account.id,
                    request_id: String::new(),
                },
            ))
            .await
            .expect("secret created")
            .into_inner();
        (account, secret.client_id, secret.client_secret)
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<Session, Status> {
        let r = self
            .auth()
            .login(pb::LoginRequest {
                email: email.into(),
                password: password.into(),
            })
            .await?
            .into_inner();
        Ok(Session {
            tenant_id: r.tenant_id,
            user_id: r.user_id,
            access_token: r.access_token,
            refresh_token: r.refresh_token,
        })
    }

    /// Creates tenant `slug` with admin `admin@<slug>.test` and logs the admin in.
    pub async fn create_tenant(&self, slug: &str) -> (pb::Tenant, Session) {
        let tenant = self
            .tenants()
            .create_tenant(as_user(
                &self.platform,
                pb::CreateTenantRequest {
                    tenant: Some(pb::Tenant {
                        name: format!("{slug} homes"),
                        slug: slug.into(),
                        subscription_status: "trial".into(),
                        ..Default::default()
                    }),
                    admin_email: format!("admin@{slug}.test"),
                    admin_name: format!("{slug} admin"),
                    admin_password: PASSWORD.into(),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("tenant created")
            .into_inner();
        let admin = self
            .login(&format!("admin@{slug}.test"), PASSWORD)
            .await
            .expect("tenant admin logs in");
        (tenant, admin)
    }

    /// The ids of the live roles of the session's tenant named `names`, in that order.
    pub async fn role_ids(&self, session: &Session, names: &[&str]) -> Vec<i64> {
        let roles = self
            .roles()
            .list_roles(as_user(
                session,
                pb::ListRolesRequest {
                    page_size: 1000,
                    ..Default::default()
                },
            ))
            .await
            .expect("roles listed")
            .into_inner()
            .roles;
        names
            .iter()
            .map(|name| {
                roles
                    .iter()
                    .find(|r| r.name == *name)
                    .unwrap_or_else(|| panic!("role {name} exists"))
                    .id
            })
            .collect()
    }

    /// Creates a user holding the roles named `roles` in the session's tenant and logs
    /// them in.
    pub async fn create_user(
        &self,
        admin: &Session,
        email: &str,
        roles: &[&str],
    ) -> (pb::User, Session) {
        let role_ids = self.role_ids(admin, roles).await;
        let user = self
            .users()
            .create_user(as_user(
                admin,
                pb::CreateUserRequest {
                    user: Some(pb::User {
                        name: "Test User".into(),
                        email: email.into(),
                        ..Default::default()
                    }),
                    password: PASSWORD.into(),
                    role_ids,
                    request_id: String::new(),
                },
            ))
            .await
            .expect("user created")
            .into_inner();
        let session = self.login(email, PASSWORD).await.expect("user logs in");
        (user, session)
    }
}

fn empty_session() -> Session {
    Session {
        tenant_id: 0,
        user_id: 0,
        access_token: String::new(),
        refresh_token: String::new(),
    }
}

/// A request carrying the session's token and tenant header, as the edge would send it.
pub fn as_user<T>(session: &Session, message: T) -> Request<T> {
    let mut req = Request::new(message);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", session.access_token).parse().unwrap(),
    );
    req.metadata_mut().insert(
        "x-tenant-id",
        session.tenant_id.to_string().parse().unwrap(),
    );
    req
}

/// The payload of a JWT, decoded but not verified (the tests that verify use the JWKS).
pub fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("the payload is base64url");
    serde_json::from_slice(&bytes).expect("the payload is JSON")
}

pub use fusion_testkit::{expect_code, reason, violated_fields};
