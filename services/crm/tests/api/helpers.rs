//! Spawning crm for a test beside the real identity and property it checks references
//! with, all on one fresh database, and acting as real users who logged in.

use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use fusion_crm::{Application, CrmConfig};
use fusion_proto::crm::v1 as pb;
use fusion_proto::property::v1 as proppb;
use fusion_service::ServiceConfig;
use fusion_tenancy::IdentityJwks;
use fusion_testkit::{TestDatabase, bind_ephemeral, connect_channel};

pub use fusion_testkit::{expect_code, reason, violated_fields};

/// Asserts `result` is INVALID_ARGUMENT naming exactly `fields` (in any order).
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug, F: AsRef<str>>(
    result: Result<T, Status>,
    fields: &[F],
) -> Status {
    let status = expect_code(result, Code::InvalidArgument);
    let mut named = violated_fields(&status);
    named.sort();
    let mut expected: Vec<&str> = fields.iter().map(AsRef::as_ref).collect();
    expected.sort_unstable();
    assert_eq!(named, expected, "the fields named by {status:?}");
    status
}

/// An update mask of `paths`.
pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// A select custom field `name` of `options` holding `value`.
pub fn select(name: &str, label: &str, options: &[&str], value: &str) -> pb::CustomField {
    pb::CustomField {
        name: name.into(),
        label: label.into(),
        r#type: "select".into(),
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        value: value.into(),
        values: vec![],
    }
}

/// The lead custom field the tests filter, merge and import on.
pub fn budget(value: &str) -> pb::CustomField {
    select(
        "budget",
        "Budget Range",
        &["100k-200k", "200k-300k", "300k+"],
        value,
    )
}

pub const PASSWORD: &str = "correct horse battery";

/// A user who logged in.
pub use fusion_testkit::people::User;

pub struct TestApp {
    // Held for the test's life: dropping them would stop identity and property.
    #[allow(dead_code)]
    pub db: TestDatabase,
    #[allow(dead_code)]
    pub identity: fusion_identity::Application,
    #[allow(dead_code)]
    pub property: fusion_property::Application,
    pub crm: Application,
    /// A channel to crm.
    pub channel: Channel,
    /// A channel to property, for creating the stock deals and notes point at.
    pub property_channel: Channel,
    /// Acme's admin.
    pub acme: User,
    /// Acme's sales agent.
    pub agent: User,
    /// Acme's viewer.
    pub viewer: User,
    /// Globex's admin.
    pub globex: User,
}

fn http(addr: std::net::SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid address")
        .connect_lazy()
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let db = TestDatabase::create(&[
            (fusion_identity::SCHEMA, &fusion_identity::MIGRATOR),
            (fusion_property::SCHEMA, &fusion_property::MIGRATOR),
            (fusion_crm::SCHEMA, &fusion_crm::MIGRATOR),
        ])
        .await;
        let identity = fusion_identity::Application::build(
            fusion_identity::IdentityConfig::with_defaults(ServiceConfig::local(
                "identity",
                db.app_url("identity"),
            )),
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("identity starts");
        for slug in ["acme", "globex"] {
            fusion_identity::bootstrap::ensure_tenant(
                &identity.state().db,
                slug,
                &format!("{slug} homes"),
                &format!("admin@{slug}.test"),
                PASSWORD,
            )
            .await
            .expect("tenant created");
        }
        let identity_channel = http(identity.grpc_addr());

        let mut property_config = fusion_property::PropertyConfig::with_defaults(
            ServiceConfig::local("property", db.app_url("property")),
        );
        property_config.media_store = fusion_property::media_store::StoreConfig::Local {
            dir: std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("crm-media")
                .join(&db.name),
        };
        // Property asks crm about the deals holds and reservations are for, and crm
        // starts after it: crm's port is bound first.
        let crm_listener = bind_ephemeral().await;
        let property = fusion_property::Application::build(
            property_config,
            Arc::new(IdentityJwks::new(identity_channel.clone())),
            http(crm_listener.local_addr().expect("bound")),
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("property starts");
        let property_channel = http(property.grpc_addr());

        let crm = Self::replica_listening(
            &db,
            identity_channel,
            property_channel.clone(),
            |_| {},
            crm_listener,
        )
        .await;
        let channel = connect_channel(crm.grpc_addr()).await;
        let identity_client = connect_channel(identity.grpc_addr()).await;
        let acme = login(&identity_client, "admin@acme.test").await;
        let globex = login(&identity_client, "admin@globex.test").await;
        let agent = user_with_role(&identity_client, &acme, "agent@acme.test", "sales_agent").await;
        let viewer = user_with_role(&identity_client, &acme, "viewer@acme.test", "viewer").await;
        TestApp {
            db,
            identity,
            property,
            crm,
            channel,
            property_channel,
            acme,
            agent,
            viewer,
            globex,
        }
    }

    /// A crm replica over the same database.
    #[allow(dead_code)] // for tests that start a second replica
    pub async fn replica(db: &TestDatabase, identity: Channel, property: Channel) -> Application {
        Self::replica_with_nats(db, identity, property, None).await
    }

    /// A crm replica that relays its outbox to the NATS at `nats_url` (and consumes
    /// property's lot events from it).
    pub async fn replica_with_nats(
        db: &TestDatabase,
        identity: Channel,
        property: Channel,
        nats_url: Option<String>,
    ) -> Application {
        Self::replica_configured(db, identity, property, |config| {
            config.service.nats_url = nats_url;
        })
        .await
    }

    /// A crm replica over the same database (with the owner's URL, so it purges and
    /// relays), its configuration changed by `configure`.
    pub async fn replica_configured(
        db: &TestDatabase,
        identity: Channel,
        property: Channel,
        configure: impl FnOnce(&mut CrmConfig),
    ) -> Application {
        let grpc = bind_ephemeral().await;
        Self::replica_listening(db, identity, property, configure, grpc).await
    }

    /// [`TestApp::replica_configured`] serving gRPC on `grpc`.
    pub async fn replica_listening(
        db: &TestDatabase,
        identity: Channel,
        property: Channel,
        configure: impl FnOnce(&mut CrmConfig),
        grpc: tokio::net::TcpListener,
    ) -> Application {
        let mut service = ServiceConfig::local("crm", db.app_url("crm"));
        service.migration_database_url = Some(db.owner_url.clone());
        service.jobs_database_url = Some(db.jobs_url(fusion_crm::SCHEMA));
        service.shutdown_deadline = Duration::from_secs(2);
        let mut config = CrmConfig::with_defaults(service);
        configure(&mut config);
        Application::build(
            config,
            Arc::new(IdentityJwks::new(identity.clone())),
            identity,
            property,
            grpc,
            bind_ephemeral().await,
        )
        .await
        .expect("crm starts")
    }

    /// A crm replica over the same database that trusts `keys` (and not identity's
    /// keys), with a channel to it: for tokens the real identity does not mint, such as
    /// one naming the tenant's time zone. It still asks the real identity and property
    /// about references.
    pub async fn replica_trusting(
        &self,
        keys: &fusion_testkit::TestKeys,
    ) -> (Application, Channel) {
        let mut service = ServiceConfig::local("crm", self.db.app_url("crm"));
        service.shutdown_deadline = Duration::from_secs(2);
        let crm = Application::build(
            CrmConfig::with_defaults(service),
            keys.provider.clone(),
            http(self.identity.grpc_addr()),
            self.property_channel.clone(),
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("crm replica starts");
        let channel = connect_channel(crm.grpc_addr()).await;
        (crm, channel)
    }

    /// A channel to identity.
    pub fn identity_channel(&self) -> Channel {
        http(self.identity.grpc_addr())
    }

    /// Runs `sql` (binding the tenant as $1) in a transaction of `who`'s tenant, as the
    /// application role: for bulk set-up of rows whose API is tested elsewhere.
    pub async fn exec(&self, who: &User, sql: &str) {
        let db = self.crm.state().db.clone();
        let mut tx = db.begin(who.tenant_id).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(who.tenant_id)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// Creates a lead named `last_name` for `who`.
    pub async fn lead(&self, who: &User, last_name: &str) -> pb::Lead {
        let lead = pb::Lead {
            first_name: "Jo".into(),
            last_name: last_name.into(),
            email: format!("{}@example.com", last_name.to_lowercase()),
            ..Default::default()
        };
        self.create(who, lead).await.expect("lead created")
    }

    /// Creates a project → stage → lot for `who` in property; returns the lot id.
    pub async fn lot(&self, who: &User, slug: &str) -> i64 {
        use fusion_proto::property::v1::{
            lot_service_client::LotServiceClient, project_service_client::ProjectServiceClient,
            stage_service_client::StageServiceClient,
        };
        let project = ProjectServiceClient::new(self.property_channel.clone())
            .create_project(who.req(proppb::CreateProjectRequest {
                project: Some(proppb::Project {
                    name: format!("Project {slug}"),
                    slug: slug.into(),
                    status: "selling".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("project created")
            .into_inner();
        let stage = StageServiceClient::new(self.property_channel.clone())
            .create_stage(who.req(proppb::CreateStageRequest {
                stage: Some(proppb::Stage {
                    project_id: project.id,
                    name: "Stage 1".into(),
                    status: "selling".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("stage created")
            .into_inner();
        LotServiceClient::new(self.property_channel.clone())
            .create_lot(who.req(proppb::CreateLotRequest {
                lot: Some(proppb::Lot {
                    stage_id: stage.id,
                    lot_number: "1".into(),
                    price: "500000.00".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("lot created")
            .into_inner()
            .id
    }
}

/// The response to `GET path` from the admin (health and metrics) server at `addr`.
pub async fn admin_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

async fn login(identity: &Channel, email: &str) -> User {
    fusion_testkit::people::login(identity, email, PASSWORD).await
}

/// Creates `email` in `admin`'s tenant with the role named `role` and logs them in.
pub async fn user_with_role(identity: &Channel, admin: &User, email: &str, role: &str) -> User {
    fusion_testkit::people::user_with_role(identity, admin, email, role, PASSWORD).await
}
