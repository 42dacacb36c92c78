//! Spawning property for a test and acting as users of several tenants.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use fusion_property::media_store::StoreConfig;
use fusion_property::{Application, MIGRATOR, PropertyConfig, SCHEMA};
use fusion_proto::property::v1 as pb;
use fusion_proto::property::v1::{
    developer_service_client::DeveloperServiceClient, feature_service_client::FeatureServiceClient,
    lot_service_client::LotServiceClient, media_service_client::MediaServiceClient,
    project_service_client::ProjectServiceClient, stage_service_client::StageServiceClient,
};
use fusion_service::ServiceConfig;
use fusion_testkit::{TestDatabase, TestKeys, bind_ephemeral, connect_channel};

/// Every property permission.
pub const WRITER: &[&str] = &[
    "property.developers.read",
    "property.developers.write",
    "property.projects.read",
    "property.projects.write",
    "property.stages.read",
    "property.stages.write",
    "property.lots.read",
    "property.lots.write",
    "property.features.read",
    "property.features.write",
    "property.media.read",
    "property.media.write",
];

/// Read-only access to all property resources (a viewer or sales agent).
pub const READER: &[&str] = &[
    "property.developers.read",
    "property.projects.read",
    "property.stages.read",
    "property.lots.read",
    "property.features.read",
    "property.media.read",
];

/// A caller: a user of a tenant with a token.
pub use fusion_testkit::people::User;

pub struct TestApp {
    pub app: Application,
    pub db: TestDatabase,
    pub keys: TestKeys,
    pub channel: Channel,
    /// Tenant 1's property manager.
    pub acme: User,
    /// Tenant 2's property manager.
    pub globex: User,
}

pub fn test_config(db: &TestDatabase) -> PropertyConfig {
    let mut service = ServiceConfig::local("property", db.app_url("property"));
    service.migration_database_url = Some(db.owner_url.clone());
    service.jobs_database_url = Some(db.jobs_url(SCHEMA));
    let mut config = PropertyConfig::with_defaults(service);
    config.housekeeping_interval = Duration::from_millis(100);
    config.media_store = StoreConfig::Local { dir: media_dir(db) };
    config
}

/// The media directory of the test using `db` (one per test database).
pub fn media_dir(db: &TestDatabase) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("media")
        .join(&db.name)
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let db = TestDatabase::create(&[(SCHEMA, &MIGRATOR)]).await;
        let keys = TestKeys::new();
        let app = Self::replica(&db, &keys).await;
        let channel = connect_channel(app.grpc_addr()).await;
        let acme = user(&keys, 1, 11, WRITER);
        let globex = user(&keys, 2, 21, WRITER);
        TestApp {
            app,
            db,
            keys,
            channel,
            acme,
            globex,
        }
    }

    /// Another replica of the service over the same database.
    pub async fn replica(db: &TestDatabase, keys: &TestKeys) -> Application {
        Self::replica_with(keys, test_config(db)).await
    }

    /// Another replica of the service, configured as given. Crm does not answer it
    /// (crm depends on property, so property's tests cannot start it): a hold or
    /// reservation for a deal finds crm unavailable.
    pub async fn replica_with(keys: &TestKeys, config: PropertyConfig) -> Application {
        Application::build(
            config,
            keys.provider.clone(),
            no_crm(),
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("property starts")
    }

    /// A user of `tenant_id` holding `perms`.
    pub fn user(&self, tenant_id: i64, user_id: i64, perms: &[&str]) -> User {
        user(&self.keys, tenant_id, user_id, perms)
    }

    pub fn developers(&self) -> DeveloperServiceClient<Channel> {
        DeveloperServiceClient::new(self.channel.clone())
    }
    pub fn projects(&self) -> ProjectServiceClient<Channel> {
        ProjectServiceClient::new(self.channel.clone())
    }
    pub fn stages(&self) -> StageServiceClient<Channel> {
        StageServiceClient::new(self.channel.clone())
    }
    pub fn lots(&self) -> LotServiceClient<Channel> {
        LotServiceClient::new(self.channel.clone())
    }
    pub fn features(&self) -> FeatureServiceClient<Channel> {
        FeatureServiceClient::new(self.channel.clone())
    }
    pub fn media(&self) -> MediaServiceClient<Channel> {
        MediaServiceClient::new(self.channel.clone())
    }

    /// Creates a project (slug `slug`) with one stage for `who`; returns both.
    pub async fn project_with_stage(&self, who: &User, slug: &str) -> (pb::Project, pb::Stage) {
        let project = self
            .projects()
            .create_project(who.req(pb::CreateProjectRequest {
                project: Some(pb::Project {
                    name: format!("Project {slug}"),
                    slug: slug.into(),
                    status: "selling".into(),
                    latitude: "-27.47000000".into(),
                    longitude: "153.02000000".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("project created")
            .into_inner();
        let stage = self
            .stages()
            .create_stage(who.req(pb::CreateStageRequest {
                stage: Some(pb::Stage {
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
        (project, stage)
    }

    /// Creates lot `number` at `price` in `stage` for `who`.
    pub async fn lot(&self, who: &User, stage: &pb::Stage, number: &str, price: &str) -> pb::Lot {
        self.lots()
            .create_lot(who.req(pb::CreateLotRequest {
                lot: Some(pb::Lot {
                    stage_id: stage.id,
                    lot_number: number.into(),
                    price: price.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("lot created")
            .into_inner()
    }

    pub async fn get_project(&self, who: &User, id: i64) -> pb::Project {
        self.projects()
            .get_project(who.req(pb::GetProjectRequest { id }))
            .await
            .expect("project readable")
            .into_inner()
    }

    pub async fn get_lot(&self, who: &User, id: i64) -> pb::Lot {
        self.lots()
            .get_lot(who.req(pb::GetLotRequest { id }))
            .await
            .expect("lot readable")
            .into_inner()
    }
}

/// A channel to an address where nothing listens (a port bound and let go).
pub fn no_crm() -> Channel {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid address")
        .connect_lazy()
}

pub fn user(keys: &TestKeys, tenant_id: i64, user_id: i64, perms: &[&str]) -> User {
    User {
        tenant_id,
        user_id,
        token: keys.mint(tenant_id, user_id, perms),
    }
}

pub use fusion_testkit::{expect_code, reason, violated_fields};
