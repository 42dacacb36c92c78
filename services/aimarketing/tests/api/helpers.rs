//! Spawning ai-marketing for a test beside the real identity, property and crm it
//! reads from, all on one fresh database, and acting as real users who logged in.

use std::sync::Arc;
use std::time::Duration;

use tonic::Status;
use tonic::transport::{Channel, Endpoint};

use fusion_aimarketing::{AiMarketingConfig, Application, Peers};
use fusion_proto::aimarketing::v1 as pb;
use fusion_proto::aimarketing::v1::{
    ai_settings_service_client::AiSettingsServiceClient,
    campaign_service_client::CampaignServiceClient,
    conversation_service_client::ConversationServiceClient,
    prompt_service_client::PromptServiceClient,
};
use fusion_proto::crm::v1 as crmpb;
use fusion_proto::crm::v1::{
    contact_service_client::ContactServiceClient, deal_service_client::DealServiceClient,
    lead_service_client::LeadServiceClient, note_service_client::NoteServiceClient,
};
use fusion_proto::property::v1 as proppb;
use fusion_proto::property::v1::{
    lot_service_client::LotServiceClient, project_service_client::ProjectServiceClient,
    stage_service_client::StageServiceClient,
};
use fusion_service::ServiceConfig;
use fusion_service::config::ClientCredentials;
use fusion_tenancy::IdentityJwks;
use fusion_testkit::{TestDatabase, bind_ephemeral, connect_channel};

pub use fusion_testkit::{assert_invalid, expect_code, mask, reason};

/// The descriptions of the field violations of an INVALID_ARGUMENT.
pub fn violation_descriptions(status: &Status) -> Vec<String> {
    tonic_types::StatusExt::get_details_bad_request(status)
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| v.description)
                .collect()
        })
        .unwrap_or_default()
}

pub const PASSWORD: &str = "correct horse battery";

pub use fusion_testkit::people::User;

pub struct TestApp {
    pub db: TestDatabase,
    pub identity: fusion_identity::Application,
    // Held for the test's life: dropping them would stop property, crm and the service.
    #[allow(dead_code)]
    pub property: fusion_property::Application,
    #[allow(dead_code)]
    pub crm: fusion_crm::Application,
    #[allow(dead_code)]
    pub aimarketing: Application,
    /// A channel to ai-marketing.
    pub channel: Channel,
    /// The channels ai-marketing's replicas use.
    pub peers: Peers,
    /// Acme's admin.
    pub acme: User,
    /// Acme's marketer (the built-in marketing role).
    pub marketer: User,
    /// Globex's admin.
    pub globex: User,
}

/// Ai-marketing's platform service account secret: it reads plans with it, and its
/// consumer acts with it in tests with events.
const AIMARKETING_SECRET: &str = "ai-marketing-test-secret-0123456789abcdefgh";

/// With `nats_url`, a service relays its outbox there as its jobs role.
fn with_events(
    service: &mut ServiceConfig,
    db: &TestDatabase,
    schema: &str,
    nats_url: Option<&str>,
) {
    if let Some(url) = nats_url {
        service.nats_url = Some(url.to_owned());
        service.jobs_database_url = Some(db.jobs_url(schema));
    }
}

fn http(addr: std::net::SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid address")
        .connect_lazy()
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::start(None, |_| {}).await
    }

    /// [`TestApp::spawn`] with ai-marketing's configuration changed by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut AiMarketingConfig)) -> TestApp {
        Self::start(None, configure).await
    }

    /// [`TestApp::spawn`] with integration events through the NATS JetStream at
    /// `nats_url`: crm relays its outbox to it, and ai-marketing's consumer acts as
    /// ai-marketing's system account in each event's tenant.
    pub async fn spawn_with_events(nats_url: &str) -> TestApp {
        Self::start(Some(nats_url), |_| {}).await
    }

    /// Identity (knowing ai-marketing's platform service account, with which it reads
    /// plans and its consumer acts), property, crm and ai-marketing, configured by
    /// `configure`, with events when `nats_url` is given.
    async fn start(
        nats_url: Option<&str>,
        configure: impl FnOnce(&mut AiMarketingConfig),
    ) -> TestApp {
        let db = TestDatabase::create(&[
            (fusion_identity::SCHEMA, &fusion_identity::MIGRATOR),
            (fusion_property::SCHEMA, &fusion_property::MIGRATOR),
            (fusion_crm::SCHEMA, &fusion_crm::MIGRATOR),
            (fusion_aimarketing::SCHEMA, &fusion_aimarketing::MIGRATOR),
        ])
        .await;
        let mut identity_config = fusion_identity::IdentityConfig::with_defaults(
            ServiceConfig::local("identity", db.app_url("identity")),
        );
        identity_config.platform_service_accounts =
            fusion_identity::config::parse_platform_service_accounts(&format!(
                "{}:{AIMARKETING_SECRET}",
                fusion_aimarketing::config::SERVICE
            ))
            .expect("ai-marketing's platform service account");
        let identity = fusion_identity::Application::build(
            identity_config,
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("identity starts");
        let identity_db = &identity.state().db;
        fusion_identity::bootstrap::ensure_platform(identity_db, "ops@platform.test", PASSWORD)
            .await
            .expect("the platform tenant");
        fusion_identity::bootstrap::ensure_platform_services(
            identity_db,
            &identity.state().config.platform_service_accounts,
        )
        .await
        .expect("ai-marketing's platform service account");
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
        let keys = || Arc::new(IdentityJwks::new(identity_channel.clone()));

        let mut property_config = fusion_property::PropertyConfig::with_defaults(
            ServiceConfig::local("property", db.app_url("property")),
        );
        property_config.media_store = fusion_property::media_store::StoreConfig::Local {
            dir: std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("aimarketing-media")
                .join(&db.name),
        };
        let crm_listener = bind_ephemeral().await;
        let crm_channel = http(crm_listener.local_addr().expect("bound"));
        let property = fusion_property::Application::build(
            property_config,
            keys(),
            crm_channel.clone(),
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("property starts");
        let property_channel = http(property.grpc_addr());
        let mut crm_config =
            fusion_crm::CrmConfig::with_defaults(ServiceConfig::local("crm", db.app_url("crm")));
        with_events(&mut crm_config.service, &db, "crm", nats_url);
        let crm = fusion_crm::Application::build(
            crm_config,
            keys(),
            identity_channel.clone(),
            property_channel.clone(),
            crm_listener,
            bind_ephemeral().await,
        )
        .await
        .expect("crm starts");

        let peers = Peers {
            identity: identity_channel.clone(),
            crm: crm_channel,
            property: property_channel,
        };
        let aimarketing = Self::replica(&db, &peers, keys(), |config| {
            config.service.nats_url = nats_url.map(str::to_owned);
            configure(config);
        })
        .await;
        let channel = connect_channel(aimarketing.grpc_addr()).await;
        let identity_client = connect_channel(identity.grpc_addr()).await;
        let acme = login(&identity_client, "admin@acme.test").await;
        let globex = login(&identity_client, "admin@globex.test").await;
        let marketer =
            user_with_role(&identity_client, &acme, "marketing@acme.test", "marketing").await;
        TestApp {
            db,
            identity,
            property,
            crm,
            aimarketing,
            channel,
            peers,
            acme,
            marketer,
            globex,
        }
    }

    /// An ai-marketing replica over `db` (with the jobs role's URL, so it purges and
    /// relays), trusting `keys`, its configuration changed by `configure`.
    pub async fn replica(
        db: &TestDatabase,
        peers: &Peers,
        keys: Arc<dyn fusion_tenancy::KeyProvider>,
        configure: impl FnOnce(&mut AiMarketingConfig),
    ) -> Application {
        let mut service = ServiceConfig::local("ai-marketing", db.app_url("ai_marketing"));
        service.migration_database_url = Some(db.owner_url.clone());
        service.jobs_database_url = Some(db.jobs_url(fusion_aimarketing::SCHEMA));
        service.shutdown_deadline = Duration::from_secs(2);
        let mut config = AiMarketingConfig::with_defaults(service);
        // Its platform service account (plans, and its consumer) and a key for
        // tenants' provider keys; a test's `configure` may take either away.
        config.service_credentials = Some(ClientCredentials {
            client_id: ClientCredentials::platform_client_id(fusion_aimarketing::config::SERVICE),
            client_secret: AIMARKETING_SECRET.to_owned(),
        });
        config.secret_key = Some(
            fusion_aimarketing::settings::cipher::KeyCipher::from_base64(
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            )
            .expect("a 32-byte key"),
        );
        configure(&mut config);
        Application::build(
            config,
            keys,
            peers.clone(),
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("ai-marketing starts")
    }

    /// A replica trusting `keys` (and not identity's), with a channel to it: for
    /// callers holding exactly the permissions a test names.
    pub async fn replica_trusting(
        &self,
        keys: &fusion_testkit::TestKeys,
    ) -> (Application, Channel) {
        let replica = Self::replica(&self.db, &self.peers, keys.provider.clone(), |_| {}).await;
        let channel = connect_channel(replica.grpc_addr()).await;
        (replica, channel)
    }

    /// The prompt client.
    pub fn prompts(&self) -> PromptServiceClient<Channel> {
        PromptServiceClient::new(self.channel.clone())
    }

    /// The campaign client.
    pub fn campaigns(&self) -> CampaignServiceClient<Channel> {
        CampaignServiceClient::new(self.channel.clone())
    }

    /// The conversation client.
    pub fn conversations(&self) -> ConversationServiceClient<Channel> {
        ConversationServiceClient::new(self.channel.clone())
    }

    /// The AI settings and usage client.
    pub fn ai_settings(&self) -> AiSettingsServiceClient<Channel> {
        AiSettingsServiceClient::new(self.channel.clone())
    }

    /// A pool connecting as the administrator, around row-level security.
    pub async fn admin_pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.db.admin_url)
            .await
            .expect("the administrator connects")
    }

    /// Puts tenant `tenant_id` on a new plan with `features`.
    pub async fn set_plan_features(&self, tenant_id: i64, features: &[&str]) {
        let admin = self.admin_pool().await;
        let plan: i64 = sqlx::query_scalar(
            "INSERT INTO identity.plans (code, name, price_monthly, currency, features, active)
             VALUES ($1, 'Test plan', 10, 'AUD', $2, true) RETURNING id",
        )
        .bind(format!("plan-{tenant_id}"))
        .bind(features.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>())
        .fetch_one(&admin)
        .await
        .expect("plan created");
        sqlx::query("UPDATE identity.tenants SET plan_id = $1 WHERE id = $2")
            .bind(plan)
            .bind(tenant_id)
            .execute(&admin)
            .await
            .expect("tenant on the plan");
    }

    /// Writes a note on lead `lead_id` as `who`.
    pub async fn note_on_lead(&self, who: &User, lead_id: i64, content: &str) {
        NoteServiceClient::new(self.peers.crm.clone())
            .create_note(who.req(crmpb::CreateNoteRequest {
                note: Some(crmpb::Note {
                    notable_type: "lead".into(),
                    notable_id: lead_id,
                    content: content.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("note created");
    }

    /// A channel to identity.
    pub async fn identity_channel(&self) -> Channel {
        connect_channel(self.identity.grpc_addr()).await
    }

    /// An Acme user whose only role holds every tenant permission but `permission`.
    pub async fn user_without(&self, permission: &str) -> User {
        let identity = self.identity_channel().await;
        fusion_testkit::people::user_without(&identity, &self.acme, permission, PASSWORD).await
    }

    /// Creates a crm lead for `who`.
    pub async fn lead(
        &self,
        who: &User,
        first_name: &str,
        last_name: &str,
        tags: &[&str],
    ) -> crmpb::Lead {
        LeadServiceClient::new(self.peers.crm.clone())
            .create_lead(who.req(crmpb::CreateLeadRequest {
                lead: Some(crmpb::Lead {
                    first_name: first_name.into(),
                    last_name: last_name.into(),
                    email: format!("{}@example.com", last_name.to_lowercase()),
                    suburb: "Yeronga".into(),
                    tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("lead created")
            .into_inner()
    }

    /// Creates a crm contact for `who`; returns its id.
    pub async fn contact(&self, who: &User, first_name: &str, last_name: &str) -> i64 {
        ContactServiceClient::new(self.peers.crm.clone())
            .create_contact(who.req(crmpb::CreateContactRequest {
                contact: Some(crmpb::Contact {
                    first_name: first_name.into(),
                    last_name: last_name.into(),
                    email: format!("{}@example.com", last_name.to_lowercase()),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("contact created")
            .into_inner()
            .id
    }

    /// Creates a crm deal for `who` with a lead, a contact and a lot.
    pub async fn deal(
        &self,
        who: &User,
        lead_id: i64,
        contact_id: i64,
        lot_id: i64,
    ) -> crmpb::Deal {
        DealServiceClient::new(self.peers.crm.clone())
            .create_deal(who.req(crmpb::CreateDealRequest {
                deal: Some(crmpb::Deal {
                    title: "Lot 7 for the Nguyens".into(),
                    value: "549000.00".into(),
                    lead_id,
                    contact_id,
                    lot_id,
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("deal created")
            .into_inner()
    }

    /// Creates a project → stage → lot for `who` in property; returns the lot.
    pub async fn lot(&self, who: &User, slug: &str) -> proppb::Lot {
        let project = ProjectServiceClient::new(self.peers.property.clone())
            .create_project(who.req(proppb::CreateProjectRequest {
                project: Some(proppb::Project {
                    name: "Riverside Estate".into(),
                    slug: slug.into(),
                    suburb: "Yeronga".into(),
                    state: "QLD".into(),
                    status: "selling".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("project created")
            .into_inner();
        let stage = StageServiceClient::new(self.peers.property.clone())
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
        LotServiceClient::new(self.peers.property.clone())
            .create_lot(who.req(proppb::CreateLotRequest {
                lot: Some(proppb::Lot {
                    stage_id: stage.id,
                    lot_number: "7".into(),
                    price: "549000.00".into(),
                    bedrooms: Some(4),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("lot created")
            .into_inner()
    }

    /// Creates a prompt for `who` with `content`.
    pub async fn prompt(&self, who: &User, name: &str, content: &str) -> pb::Prompt {
        self.prompts()
            .create_prompt(who.req(pb::CreatePromptRequest {
                prompt: Some(prompt_of(name, content)),
                request_id: String::new(),
            }))
            .await
            .expect("prompt created")
            .into_inner()
    }

    /// Creates a draft email campaign for `who`.
    pub async fn campaign(&self, who: &User, name: &str) -> pb::Campaign {
        self.campaigns()
            .create_campaign(who.req(pb::CreateCampaignRequest {
                campaign: Some(pb::Campaign {
                    name: name.into(),
                    r#type: "email".into(),
                    budget: "1000.00".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("campaign created")
            .into_inner()
    }
}

/// A new prompt.
pub fn prompt_of(name: &str, content: &str) -> pb::Prompt {
    pb::Prompt {
        category: "follow_up".into(),
        name: name.into(),
        content: content.into(),
        ..Default::default()
    }
}

async fn login(identity: &Channel, email: &str) -> User {
    fusion_testkit::people::login(identity, email, PASSWORD).await
}

/// Creates `email` in `admin`'s tenant with the role named `role` and logs them in.
pub async fn user_with_role(identity: &Channel, admin: &User, email: &str, role: &str) -> User {
    fusion_testkit::people::user_with_role(identity, admin, email, role, PASSWORD).await
}
