//! Spawning finance for a test beside the real identity, property and crm it checks
//! references with, all on one fresh database, and acting as real users who logged in.

use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use fusion_finance::{Application, FinanceConfig, Peers};
use fusion_proto::crm::v1 as crmpb;
use fusion_proto::crm::v1::{
    contact_service_client::ContactServiceClient, deal_service_client::DealServiceClient,
};
use fusion_proto::finance::v1 as pb;
use fusion_proto::finance::v1::{
    commission_plan_service_client::CommissionPlanServiceClient,
    commission_service_client::CommissionServiceClient,
    invoice_service_client::InvoiceServiceClient,
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

pub const PASSWORD: &str = "correct horse battery";

/// A user who logged in.
pub use fusion_testkit::people::User;

pub struct TestApp {
    pub db: TestDatabase,
    pub identity: fusion_identity::Application,
    // Held for the test's life: dropping them would stop property and crm.
    #[allow(dead_code)]
    pub property: fusion_property::Application,
    #[allow(dead_code)]
    pub crm: fusion_crm::Application,
    #[allow(dead_code)]
    pub finance: Application,
    /// A channel to finance.
    pub channel: Channel,
    /// The channels finance's replicas use.
    pub peers: Peers,
    /// Acme's admin.
    pub acme: User,
    /// Acme's sales agent (no finance permission).
    pub agent: User,
    /// Acme's finance officer.
    pub finance_user: User,
    /// Globex's admin.
    pub globex: User,
}

/// Finance's platform service account secret, in tests with events.
const FINANCE_SECRET: &str = "finance-test-secret-0123456789abcdefghij";

/// With `nats_url`, a service relays its outbox there as its jobs role and consumes
/// from it.
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

    /// [`TestApp::spawn`] with finance's configuration changed by `configure`.
    pub async fn spawn_configured(configure: impl FnOnce(&mut FinanceConfig)) -> TestApp {
        Self::start(None, configure).await
    }

    /// [`TestApp::spawn`] with integration events through the NATS JetStream at
    /// `nats_url`: crm and property relay their outboxes to it, property sells a won
    /// deal's lot, and finance's consumers act as finance's system account in each
    /// event's tenant (identity knows finance's platform service account).
    pub async fn spawn_with_events(nats_url: &str) -> TestApp {
        Self::start(Some(nats_url), |_| {}).await
    }

    async fn start(nats_url: Option<&str>, configure: impl FnOnce(&mut FinanceConfig)) -> TestApp {
        let db = TestDatabase::create(&[
            (fusion_identity::SCHEMA, &fusion_identity::MIGRATOR),
            (fusion_property::SCHEMA, &fusion_property::MIGRATOR),
            (fusion_crm::SCHEMA, &fusion_crm::MIGRATOR),
            (fusion_finance::SCHEMA, &fusion_finance::MIGRATOR),
        ])
        .await;
        let mut identity_config = fusion_identity::IdentityConfig::with_defaults(
            ServiceConfig::local("identity", db.app_url("identity")),
        );
        if nats_url.is_some() {
            identity_config.platform_service_accounts =
                fusion_identity::config::parse_platform_service_accounts(&format!(
                    "finance:{FINANCE_SECRET}"
                ))
                .expect("finance's platform service account");
        }
        let identity = fusion_identity::Application::build(
            identity_config,
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("identity starts");
        if nats_url.is_some() {
            let identity_db = &identity.state().db;
            fusion_identity::bootstrap::ensure_platform(identity_db, "ops@platform.test", PASSWORD)
                .await
                .expect("the platform tenant");
            fusion_identity::bootstrap::ensure_platform_services(
                identity_db,
                &identity.state().config.platform_service_accounts,
            )
            .await
            .expect("finance's platform service account");
        }
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
        with_events(&mut property_config.service, &db, "property", nats_url);
        property_config.media_store = fusion_property::media_store::StoreConfig::Local {
            dir: std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("finance-media")
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
        let finance = Self::replica(&db, &peers, keys(), |config| {
            config.service.nats_url = nats_url.map(str::to_owned);
            if nats_url.is_some() {
                config.service_credentials = Some(ClientCredentials {
                    client_id: ClientCredentials::platform_client_id("finance"),
                    client_secret: FINANCE_SECRET.to_owned(),
                });
            }
            configure(config);
        })
        .await;
        let channel = connect_channel(finance.grpc_addr()).await;
        let identity_client = connect_channel(identity.grpc_addr()).await;
        let acme = login(&identity_client, "admin@acme.test").await;
        let globex = login(&identity_client, "admin@globex.test").await;
        let agent = user_with_role(&identity_client, &acme, "agent@acme.test", "sales_agent").await;
        let finance_user =
            user_with_role(&identity_client, &acme, "finance@acme.test", "finance").await;
        TestApp {
            db,
            identity,
            property,
            crm,
            finance,
            channel,
            peers,
            acme,
            agent,
            finance_user,
            globex,
        }
    }

    /// A finance replica over `db` (with the jobs role's URL, so it purges and
    /// relays), trusting `keys`, its configuration changed by `configure`.
    pub async fn replica(
        db: &TestDatabase,
        peers: &Peers,
        keys: Arc<dyn fusion_tenancy::KeyProvider>,
        configure: impl FnOnce(&mut FinanceConfig),
    ) -> Application {
        let mut service = ServiceConfig::local("finance", db.app_url("finance"));
        service.migration_database_url = Some(db.owner_url.clone());
        service.jobs_database_url = Some(db.jobs_url(fusion_finance::SCHEMA));
        service.shutdown_deadline = Duration::from_secs(2);
        let mut config = FinanceConfig::with_defaults(service);
        configure(&mut config);
        Application::build(
            config,
            keys,
            peers.clone(),
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("finance starts")
    }

    /// A finance replica trusting `keys` (and not identity's), with a channel to it:
    /// for callers holding exactly the permissions a test names.
    pub async fn replica_trusting(
        &self,
        keys: &fusion_testkit::TestKeys,
    ) -> (Application, Channel) {
        let replica = Self::replica(&self.db, &self.peers, keys.provider.clone(), |_| {}).await;
        let channel = connect_channel(replica.grpc_addr()).await;
        (replica, channel)
    }

    /// The invoice client.
    pub fn invoices(&self) -> InvoiceServiceClient<Channel> {
        InvoiceServiceClient::new(self.channel.clone())
    }

    /// Creates a crm contact for `who`; returns its id.
    pub async fn contact(&self, who: &User, last_name: &str) -> i64 {
        ContactServiceClient::new(self.peers.crm.clone())
            .create_contact(who.req(crmpb::CreateContactRequest {
                contact: Some(crmpb::Contact {
                    first_name: "Jo".into(),
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

    /// Creates a crm deal for `who`; returns its id.
    pub async fn deal(&self, who: &User, title: &str) -> i64 {
        DealServiceClient::new(self.peers.crm.clone())
            .create_deal(who.req(crmpb::CreateDealRequest {
                deal: Some(crmpb::Deal {
                    title: title.into(),
                    value: "549000.00".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("deal created")
            .into_inner()
            .id
    }

    /// The commission plan client.
    pub fn plans(&self) -> CommissionPlanServiceClient<Channel> {
        CommissionPlanServiceClient::new(self.channel.clone())
    }

    /// The commission client.
    pub fn commissions(&self) -> CommissionServiceClient<Channel> {
        CommissionServiceClient::new(self.channel.clone())
    }

    /// Creates a crm deal for `who` on lot `lot_id` (0: none), worth `value`; returns
    /// its id.
    pub async fn deal_on(&self, who: &User, title: &str, lot_id: i64, value: &str) -> i64 {
        DealServiceClient::new(self.peers.crm.clone())
            .create_deal(who.req(crmpb::CreateDealRequest {
                deal: Some(crmpb::Deal {
                    title: title.into(),
                    lot_id,
                    value: value.into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("deal created")
            .into_inner()
            .id
    }

    /// Creates a property project for `who` with slug `slug`; returns its id.
    pub async fn project(&self, who: &User, slug: &str) -> i64 {
        ProjectServiceClient::new(self.peers.property.clone())
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
            .into_inner()
            .id
    }

    /// Creates a lot for `who` in a stage of project `project`; returns its id.
    pub async fn lot(&self, who: &User, project: i64) -> i64 {
        let stage = StageServiceClient::new(self.peers.property.clone())
            .create_stage(who.req(proppb::CreateStageRequest {
                stage: Some(proppb::Stage {
                    project_id: project,
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
                    lot_number: "1".into(),
                    price: "549000.00".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("lot created")
            .into_inner()
            .id
    }

    /// Creates an invoice for `who` with `lines` of (quantity, unit price, tax rate).
    pub async fn invoice(&self, who: &User, lines: &[(&str, &str, &str)]) -> pb::Invoice {
        self.invoices()
            .create_invoice(who.req(pb::CreateInvoiceRequest {
                invoice: Some(invoice_of(lines)),
                request_id: String::new(),
            }))
            .await
            .expect("invoice created")
            .into_inner()
    }
}

/// A draft invoice with `lines` of (quantity, unit price, tax rate).
pub fn invoice_of(lines: &[(&str, &str, &str)]) -> pb::Invoice {
    pb::Invoice {
        line_items: lines
            .iter()
            .enumerate()
            .map(|(i, (q, p, t))| line(&format!("Line {i}"), q, p, t))
            .collect(),
        ..Default::default()
    }
}

/// A line item.
pub fn line(
    description: &str,
    quantity: &str,
    unit_price: &str,
    tax_rate: &str,
) -> pb::InvoiceLineItem {
    pb::InvoiceLineItem {
        description: description.into(),
        quantity: quantity.into(),
        unit_price: unit_price.into(),
        tax_rate: tax_rate.into(),
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
