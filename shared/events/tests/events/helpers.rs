//! The harness: a fresh database with crm (producer) and property (consumer) schemas,
//! a private NATS server, and a handler that records its effect in a tenant table.

use std::future::Future;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::watch;
use uuid::Uuid;

use fusion_db::{Db, TenantTx};
use fusion_events::consumer::Consumer;
use fusion_events::relay::Relay;
use fusion_events::{
    ConsumerConfig, Delivery, Event, EventMetrics, Handler, RelayConfig, Topology,
};
use fusion_proto::crm::v1::DealWon;
use fusion_testkit::{PrivateNats, TestDatabase};

pub static CRM: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/crm");
pub static PROPERTY: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/property");

pub const PRODUCER: &str = "crm";
pub const CONSUMER_SCHEMA: &str = "property";
pub const WON: &str = "crm.deal.won";

pub struct Harness {
    /// Kept for the life of the test.
    _db: TestDatabase,
    /// Crm's application role, as the producing service connects.
    pub producer: Db,
    /// Property's application role, as the consuming service connects.
    pub consumer: Db,
    /// The owner role, as the relay connects.
    pub owner: PgPool,
    /// An administrator, for assertions across tenants.
    pub admin: PgPool,
    pub nats: PrivateNats,
    pub topology: Topology,
    pub metrics: EventMetrics,
    stop: watch::Sender<bool>,
}

impl Harness {
    pub async fn new() -> Self {
        let db = TestDatabase::create(&[("crm", &CRM), ("property", &PROPERTY)]).await;
        let owner = PgPoolOptions::new()
            .max_connections(3)
            .connect(&db.owner_url)
            .await
            .expect("owner pool");
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect(&db.admin_url)
            .await
            .expect("admin pool");
        // The consumer's effect: a tenant table like any other (RLS forced).
        for sql in [
            "CREATE TABLE property.test_effects (
                 id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 tenant_id bigint NOT NULL, event_id uuid NOT NULL, deal_id bigint NOT NULL,
                 touched integer NOT NULL DEFAULT 0)",
            "ALTER TABLE property.test_effects ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE property.test_effects FORCE ROW LEVEL SECURITY",
            "CREATE POLICY tenant_isolation ON property.test_effects
                 USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint)
                 WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint)",
            "GRANT SELECT, INSERT, UPDATE ON property.test_effects TO fusion_property",
        ] {
            sqlx::query(sql).execute(&owner).await.expect("effects table");
        }
        let producer = db.app_db(PRODUCER).await;
        let consumer = db.app_db(CONSUMER_SCHEMA).await;
        let nats = PrivateNats::start();
        Self {
            _db: db,
            producer,
            consumer,
            owner,
            admin,
            nats,
            topology: Topology::named(&format!("t{}", Uuid::new_v4().simple())),
            metrics: EventMetrics::new(),
            stop: watch::channel(false).0,
        }
    }

    pub async fn client(&self) -> async_nats::Client {
        fusion_events::connect(&self.nats.url(), "fusion-events-tests")
            .await
            .expect("connecting to NATS")
    }

    pub fn relay_config(&self) -> RelayConfig {
        let mut config = RelayConfig::new(PRODUCER);
        config.topology = self.topology.clone();
        config.idle_poll = Duration::from_millis(20);
        config.max_backoff = Duration::from_millis(500);
        config.publish_timeout = Duration::from_secs(1);
        config
    }

    pub async fn relay(&self) -> Relay {
        Relay::new(
            self.owner.clone(),
            self.client().await,
            self.relay_config(),
            self.metrics.clone(),
        )
    }

    pub fn consumer_config(&self, name: &str) -> ConsumerConfig {
        let mut config = ConsumerConfig::new(name, CONSUMER_SCHEMA, &[WON]);
        config.topology = self.topology.clone();
        config.retry_delay = Duration::from_millis(50);
        config.fetch_wait = Duration::from_millis(500);
        config
    }

    /// Starts `handler` as a durable consumer named `name`; it stops with the harness.
    pub async fn spawn_consumer<H: Handler>(&self, config: ConsumerConfig, handler: H) {
        Consumer::new(
            self.consumer.clone(),
            self.client().await,
            config,
            handler,
            self.metrics.clone(),
        )
        .spawn(self.stop.subscribe());
    }

    /// What stops a consumer with the harness.
    pub fn stop(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    pub async fn spawn_relay(&self) {
        self.relay().await.spawn(self.stop.subscribe());
    }

    /// Commits one `crm.deal.won` for `deal_id` in `tenant`; returns its event id.
    pub async fn win(&self, tenant: i64, deal_id: i64, stage: &str) -> Uuid {
        let mut tx = self.producer.begin(tenant).await.expect("begin");
        let id = fusion_events::outbox::append(&mut tx, PRODUCER, won(deal_id, stage))
            .await
            .expect("append");
        tx.commit().await.expect("commit");
        id
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.admin)
            .await
            .expect(sql)
    }

    /// How many times the consumer's effect ran for each event: (events, max per event).
    pub async fn effects(&self) -> (i64, i64) {
        sqlx::query_as(
            "SELECT count(*)::bigint, coalesce(max(n), 0)::bigint FROM
               (SELECT count(*) AS n FROM property.test_effects GROUP BY event_id) e",
        )
        .fetch_one(&self.admin)
        .await
        .expect("counting effects")
    }

    pub async fn stream_exists(&self) -> bool {
        let js = async_nats::jetstream::new(self.client().await);
        js.get_stream(&self.topology.stream).await.is_ok()
    }

    pub async fn stream_messages(&self) -> u64 {
        let js = async_nats::jetstream::new(self.client().await);
        let mut stream = js
            .get_stream(&self.topology.stream)
            .await
            .expect("the stream exists");
        stream.info().await.expect("stream info").state.messages
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub fn won(deal_id: i64, stage: &str) -> Event {
    Event::new(
        WON,
        deal_id,
        &DealWon {
            deal_id,
            lot_id: deal_id * 10,
            stage: stage.to_owned(),
            value: "549000.00".into(),
            currency_code: "AUD".into(),
            ..Default::default()
        },
    )
}

/// Records each event it is given as a row of `property.test_effects` in the event's
/// tenant; fails (every time) on deals won into the stage "poison".
pub struct Recorder;

impl Handler for Recorder {
    async fn handle(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        let won: DealWon = event.payload()?;
        anyhow::ensure!(
            won.stage != "poison",
            "deal {} cannot be applied",
            won.deal_id
        );
        sqlx::query(
            "INSERT INTO property.test_effects (tenant_id, event_id, deal_id)
             VALUES ($1, $2::uuid, $3)",
        )
        .bind(tx.tenant_id())
        .bind(&event.envelope.event_id)
        .bind(won.deal_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Polls `check` until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
