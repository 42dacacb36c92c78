//! A consumed event's audit field names a service account of the event's tenant: with
//! service credentials, property's `property-lot-sales` consumer acts as property's
//! system account in each event's tenant (issued by a real identity), and the lot's
//! status history names that account, never a person, never nobody.

use std::time::{Duration, Instant};

use sqlx::postgres::PgPoolOptions;

use fusion_events::relay::Relay;
use fusion_events::{Event, EventMetrics, RelayConfig};
use fusion_identity::config::parse_platform_service_accounts;
use fusion_proto::crm::v1::DealWon;
use fusion_proto::identity::v1 as idpb;
use fusion_proto::identity::v1::auth_service_client::AuthServiceClient;
use fusion_proto::property::v1 as pb;
use fusion_service::ServiceConfig;
use fusion_service::config::ClientCredentials;
use fusion_testkit::{PrivateNats, TestDatabase, bind_ephemeral, connect_channel};

use crate::helpers::{TestApp, User, WRITER, test_config};

static CRM: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/crm");

const SECRET: &str = "property-test-secret-0123456789abcdefgh";

struct Setup {
    app: TestApp,
    identity: fusion_identity::Application,
    _identity_db: TestDatabase,
    _replica: fusion_property::Application,
    _nats: PrivateNats,
    crm: TestDatabase,
    relay: Relay,
    /// Identity's tenants acme and globex.
    tenants: [i64; 2],
}

impl Setup {
    async fn start() -> Self {
        // Identity, with property's platform service account and two tenants.
        let identity_db =
            TestDatabase::create(&[(fusion_identity::SCHEMA, &fusion_identity::MIGRATOR)]).await;
        let mut config = fusion_identity::IdentityConfig::with_defaults(ServiceConfig::local(
            "identity",
            identity_db.app_url("identity"),
        ));
        config.platform_service_accounts =
            parse_platform_service_accounts(&format!("property:{SECRET}")).unwrap();
        let identity = fusion_identity::Application::build(
            config,
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("identity starts");
        let db = &identity.state().db;
        fusion_identity::bootstrap::ensure_platform(
            db,
            "ops@platform.test",
            "correct horse battery",
        )
        .await
        .unwrap();
        fusion_identity::bootstrap::ensure_platform_services(
            db,
            &identity.state().config.platform_service_accounts,
        )
        .await
        .unwrap();
        let mut tenants = [0; 2];
        for (i, slug) in ["acme", "globex"].into_iter().enumerate() {
            tenants[i] = fusion_identity::bootstrap::ensure_tenant(
                db,
                slug,
                slug,
                &format!("admin@{slug}.test"),
                "correct horse battery",
            )
            .await
            .unwrap();
        }

        // Property consuming through a private NATS, with its credentials.
        let app = TestApp::spawn().await;
        let nats = PrivateNats::start();
        let mut config = test_config(&app.db);
        config.service.nats_url = Some(nats.url());
        config.identity_url = format!("http://{}", identity.grpc_addr());
        config.service_credentials = Some(ClientCredentials {
            client_id: ClientCredentials::platform_client_id("property"),
            client_secret: SECRET.into(),
        });
        let replica = TestApp::replica_with(&app.keys, config).await;

        // A crm outbox and its relay, as crm's would be.
        let crm = TestDatabase::create(&[("crm", &CRM)]).await;
        let owner = PgPoolOptions::new()
            .max_connections(1)
            .connect(&crm.owner_url)
            .await
            .unwrap();
        let client = fusion_events::connect(&nats.url(), "property-tests")
            .await
            .unwrap();
        let relay = Relay::new(owner, client, RelayConfig::new("crm"), EventMetrics::new());
        Self {
            app,
            identity,
            _identity_db: identity_db,
            _replica: replica,
            _nats: nats,
            crm,
            relay,
            tenants,
        }
    }

    /// A property manager of identity's tenant `tenant`.
    fn manager(&self, tenant: i64) -> User {
        self.app.user(tenant, 11, WRITER)
    }

    async fn win(&self, tenant: i64, deal_id: i64, lot_id: i64) {
        let db = self.crm.app_db("crm").await;
        let mut tx = db.begin(tenant).await.unwrap();
        let won = DealWon {
            deal_id,
            lot_id,
            stage: "won".into(),
            ..Default::default()
        };
        fusion_events::outbox::append(&mut tx, "crm", Event::new("crm.deal.won", deal_id, &won))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(self.relay.run_once().await.unwrap().sent, 1);
    }

    async fn exchanged(&self, who: &User, lot: i64) -> pb::LotStatusChange {
        let start = Instant::now();
        loop {
            let changes = self
                .app
                .lots()
                .list_lot_status_changes(who.req(pb::ListLotStatusChangesRequest {
                    lot_id: lot,
                    ..Default::default()
                }))
                .await
                .unwrap()
                .into_inner()
                .lot_status_changes;
            // Newest first.
            if let Some(last) = changes
                .into_iter()
                .next()
                .filter(|c| c.to_status == "exchanged")
            {
                return last;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "lot {lot} not exchanged within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Property's system account in `tenant`, as identity answers for it.
    async fn system_account(&self, tenant: i64) -> i64 {
        let channel = connect_channel(self.identity.grpc_addr()).await;
        AuthServiceClient::new(channel)
            .issue_service_token(idpb::IssueServiceTokenRequest {
                client_id: "sa_platform_property".into(),
                client_secret: SECRET.into(),
                tenant_id: tenant,
            })
            .await
            .expect("a token for property's system account")
            .into_inner()
            .service_account_id
    }
}

#[tokio::test]
async fn a_lot_sold_by_a_won_deal_names_the_events_tenants_system_account_in_its_history() {
    let s = Setup::start().await;
    let [acme, globex] = s.tenants;
    let mut sold = Vec::new();
    for (tenant, deal) in [(acme, 301), (globex, 302)] {
        let manager = s.manager(tenant);
        let (_, stage) = s.app.project_with_stage(&manager, "audited").await;
        let lot = s.app.lot(&manager, &stage, "1", "500000.00").await;
        s.win(tenant, deal, lot.id).await;
        sold.push((tenant, deal, manager, lot));
    }
    let mut actors = Vec::new();
    for (tenant, deal, manager, lot) in &sold {
        let change = s.exchanged(manager, lot.id).await;
        assert_eq!(change.deal_id, *deal);
        let system = s.system_account(*tenant).await;
        assert_eq!(change.actor_user_id, system, "tenant {tenant}");
        actors.push(change.actor_user_id);
    }
    assert!(actors.iter().all(|a| *a > 0));
    assert_ne!(actors[0], actors[1], "each tenant's own system account");
}
