//! Consumers: once per event, in its tenant, with dead letters for poison.

use std::time::Duration;

use fusion_db::TenantTx;
use fusion_events::{Delivery, Handler};

use crate::helpers::*;

#[tokio::test]
async fn a_consumer_applies_each_event_once_in_its_tenant_and_records_it_in_the_inbox() {
    let h = Harness::new().await;
    h.spawn_relay().await;
    h.spawn_consumer(h.consumer_config("property-test"), Recorder)
        .await;
    h.win(1, 11, "won").await;
    h.win(2, 22, "won").await;
    eventually(Duration::from_secs(10), "both applied", || async {
        h.effects().await == (2, 1)
    })
    .await;
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT tenant_id, deal_id FROM property.test_effects ORDER BY tenant_id")
            .fetch_all(&h.admin)
            .await
            .unwrap();
    assert_eq!(rows, vec![(1, 11), (2, 22)]);
    assert_eq!(
        h.scalar(
            "SELECT count(*) FROM property.inbox_events i
               JOIN crm.outbox_events o ON o.event_id = i.event_id AND o.tenant_id = i.tenant_id
              WHERE i.consumer = 'property-test'"
        )
        .await,
        2
    );
    assert!(h.metrics.deliveries("property-test") >= 2);
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_after_max_deliver_while_later_events_still_apply() {
    let h = Harness::new().await;
    let mut config = h.consumer_config("property-poison");
    config.max_deliver = 3;
    h.spawn_relay().await;
    h.spawn_consumer(config, Recorder).await;
    let poison = h.win(1, 1, "poison").await;
    for deal in 2..=4 {
        h.win(1, deal, "won").await;
    }
    eventually(
        Duration::from_secs(15),
        "the later events applied",
        || async { h.effects().await == (3, 1) },
    )
    .await;
    let (event_id, attempts, error): (uuid::Uuid, i32, String) = sqlx::query_as(
        "SELECT event_id, attempts, error FROM property.dead_letters WHERE consumer = 'property-poison'",
    )
    .fetch_one(&h.admin)
    .await
    .unwrap();
    assert_eq!((event_id, attempts), (poison, 3));
    assert!(error.contains("cannot be applied"), "{error}");
    assert_eq!(h.metrics.dead_letters("property-poison"), 1);
    assert_eq!(h.metrics.failures("property-poison"), 3);
    assert_eq!(
        h.scalar("SELECT count(*) FROM property.inbox_events WHERE event_id = (SELECT event_id FROM property.dead_letters)")
            .await,
        0,
        "a dead letter is not in the inbox: it can be replayed"
    );
}

/// Tries to act on every row it can reach and on a row of another tenant.
struct Greedy;

impl Handler for Greedy {
    async fn handle(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        sqlx::query("UPDATE property.test_effects SET touched = touched + 1")
            .execute(&mut **tx)
            .await?;
        // A payload naming another tenant cannot make the consumer write there.
        let won: fusion_proto::crm::v1::DealWon = event.payload()?;
        if won.stage == "other-tenant" {
            sqlx::query(
                "INSERT INTO property.test_effects (tenant_id, event_id, deal_id)
                 VALUES (2, gen_random_uuid(), $1)",
            )
            .bind(won.deal_id)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_consumer_binds_the_envelopes_tenant_before_touching_data() {
    let h = Harness::new().await;
    for tenant in [1, 2] {
        let mut tx = h.consumer.begin(tenant).await.unwrap();
        sqlx::query(
            "INSERT INTO property.test_effects (tenant_id, event_id, deal_id)
             VALUES ($1, gen_random_uuid(), 0)",
        )
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let mut config = h.consumer_config("property-greedy");
    config.max_deliver = 2;
    h.spawn_relay().await;
    h.spawn_consumer(config, Greedy).await;
    h.win(1, 5, "won").await;
    let reaching = h.win(1, 6, "other-tenant").await;
    eventually(
        Duration::from_secs(15),
        "the foreign write dead-lettered",
        || async { h.scalar("SELECT count(*) FROM property.dead_letters").await == 1 },
    )
    .await;
    let touched: Vec<(i64, i32)> =
        sqlx::query_as("SELECT tenant_id, touched FROM property.test_effects ORDER BY tenant_id")
            .fetch_all(&h.admin)
            .await
            .unwrap();
    assert_eq!(
        touched,
        vec![(1, 1), (2, 0)],
        "only the event's tenant was touched"
    );
    let (dead, tenant): (uuid::Uuid, i64) =
        sqlx::query_as("SELECT event_id, tenant_id FROM property.dead_letters")
            .fetch_one(&h.admin)
            .await
            .unwrap();
    assert_eq!((dead, tenant), (reaching, 1));
}

/// Fails the first two deliveries of deals won into the stage "flaky"; records each
/// applied event's lot id as its effect.
struct Flaky;

impl Handler for Flaky {
    async fn handle(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        let won: fusion_proto::crm::v1::DealWon = event.payload()?;
        anyhow::ensure!(
            won.stage != "flaky" || event.delivered >= 3,
            "not yet (delivery {})",
            event.delivered
        );
        sqlx::query(
            "INSERT INTO property.test_effects (tenant_id, event_id, deal_id)
             VALUES ($1, $2::uuid, $3)",
        )
        .bind(tx.tenant_id())
        .bind(&event.envelope.event_id)
        .bind(won.lot_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// With more than one message in flight (`max_ack_pending` 8) this order breaks: the
/// retried first event lands last.
#[tokio::test]
async fn an_aggregates_events_apply_in_commit_order_even_when_the_first_is_retried() {
    let h = Harness::new().await;
    for (lot, stage) in [(1, "flaky"), (2, "won"), (3, "won")] {
        let mut tx = h.producer.begin(1).await.unwrap();
        let won = fusion_proto::crm::v1::DealWon {
            deal_id: 7,
            lot_id: lot,
            stage: stage.into(),
            ..Default::default()
        };
        fusion_events::outbox::append(&mut tx, PRODUCER, fusion_events::Event::new(WON, 7, &won))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    h.relay().await.run_once().await.unwrap();
    h.spawn_consumer(h.consumer_config("property-order"), Flaky)
        .await;
    eventually(Duration::from_secs(10), "all three applied", || async {
        h.effects().await.0 == 3
    })
    .await;
    let order: Vec<i64> =
        sqlx::query_scalar("SELECT deal_id FROM property.test_effects ORDER BY id")
            .fetch_all(&h.admin)
            .await
            .unwrap();
    assert_eq!(
        order,
        vec![1, 2, 3],
        "the retried first event still applied first"
    );
    assert_eq!(h.metrics.failures("property-order"), 2);
}

/// Records each event as a row of `property.test_effects` whose `deal_id` is the
/// event's aggregate id, whatever its type and payload.
struct ByAggregate;

impl Handler for ByAggregate {
    async fn handle(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO property.test_effects (tenant_id, event_id, deal_id)
             VALUES ($1, $2::uuid, $3)",
        )
        .bind(tx.tenant_id())
        .bind(&event.envelope.event_id)
        .bind(event.envelope.aggregate_id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Commits one event of `event_type` about deal `deal_id` in `tenant`.
async fn commit(h: &Harness, tenant: i64, event_type: &str, deal_id: i64) {
    let mut tx = h.producer.begin(tenant).await.unwrap();
    let payload = fusion_proto::crm::v1::DealLost {
        deal_id,
        ..Default::default()
    };
    fusion_events::outbox::append(
        &mut tx,
        PRODUCER,
        fusion_events::Event::new(event_type, deal_id, &payload),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// What the durable consumer `name` filters on, as the server has it; empty while it
/// does not exist (between its deletion and its making again).
async fn server_filter(h: &Harness, name: &str) -> String {
    let js = async_nats::jetstream::new(h.client().await);
    let stream = js.get_stream(&h.topology.stream).await.unwrap();
    match stream.consumer_info(name).await {
        Ok(info) => info.config.filter_subject,
        Err(e) => {
            assert_eq!(
                e.kind(),
                async_nats::jetstream::context::ConsumerInfoErrorKind::NotFound
            );
            String::new()
        }
    }
}

/// The installed nats-server (Debian's 2.9) refuses `filter_subjects`: several types
/// share one wildcard filter, and the siblings it also matches are acknowledged without
/// effect, without an inbox row, and without holding up the events after them.
#[tokio::test]
async fn a_consumer_of_several_types_filters_on_their_prefix_and_skips_the_types_it_did_not_list() {
    let h = Harness::new().await;
    let mut config = h.consumer_config("property-several");
    config.event_types = vec!["crm.deal.won".into(), "crm.deal.lost".into()];
    assert_eq!(
        config.filter_subject(),
        format!("{}.crm.deal.*", h.topology.prefix)
    );
    commit(&h, 1, "crm.deal.won", 1).await;
    commit(&h, 1, "crm.deal.reopened", 2).await;
    commit(&h, 1, "crm.deal.lost", 3).await;
    // Another aggregate's event is outside the filter altogether.
    commit(&h, 1, "crm.lead.converted", 4).await;
    assert_eq!(h.relay().await.run_once().await.unwrap().sent, 4);
    h.spawn_consumer(config, ByAggregate).await;
    eventually(Duration::from_secs(10), "won and lost applied", || async {
        h.effects().await.0 == 2
    })
    .await;
    eventually(Duration::from_secs(10), "the reopened skipped", || async {
        h.metrics.ignored("property-several") == 1
    })
    .await;
    let applied: Vec<(i64, String)> = sqlx::query_as(
        "SELECT e.deal_id, i.event_type FROM property.test_effects e
           JOIN property.inbox_events i ON i.event_id = e.event_id
          ORDER BY e.id",
    )
    .fetch_all(&h.admin)
    .await
    .unwrap();
    assert_eq!(
        applied,
        vec![
            (1, "crm.deal.won".to_owned()),
            (3, "crm.deal.lost".to_owned())
        ]
    );
    assert_eq!(
        h.scalar("SELECT count(*) FROM property.inbox_events").await,
        2,
        "no inbox row for the skipped type"
    );
    assert_eq!(
        h.scalar("SELECT count(*) FROM property.dead_letters").await,
        0
    );
    assert_eq!(h.metrics.failures("property-several"), 0);
    assert_eq!(
        server_filter(&h, "property-several").await,
        format!("{}.crm.deal.*", h.topology.prefix)
    );
}

/// A consumer that received one type (filter `fusion.crm.deal.won`) and is started
/// again receiving several (an upgrade) keeps its place in the stream: nothing it
/// applied is applied again, the events of the new types committed from then on are
/// delivered, and those the stream held before, which it had passed over when they
/// were not its business, stay passed over.
/// Starts a consumer that runs until the returned sender says stop.
async fn run(
    h: &Harness,
    config: fusion_events::ConsumerConfig,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = fusion_events::consumer::Consumer::new(
        h.consumer.clone(),
        h.client().await,
        config,
        ByAggregate,
        h.metrics.clone(),
    )
    .spawn(stopped);
    (stop, task)
}

async fn applied_deals(h: &Harness) -> Vec<i64> {
    sqlx::query_scalar("SELECT deal_id FROM property.test_effects ORDER BY id")
        .fetch_all(&h.admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_durable_consumer_given_more_types_keeps_its_place() {
    let h = Harness::new().await;
    let filter = |tail: &str| format!("{}.crm.deal.{tail}", h.topology.prefix);
    commit(&h, 1, "crm.deal.won", 1).await;
    commit(&h, 1, "crm.deal.lost", 2).await;
    h.relay().await.run_once().await.unwrap();
    let (stop, first) = run(&h, h.consumer_config("property-grown")).await;
    eventually(Duration::from_secs(10), "the won applied", || async {
        h.effects().await.0 == 1
    })
    .await;
    stop.send(true).unwrap();
    first.await.unwrap();
    assert_eq!(server_filter(&h, "property-grown").await, filter("won"));

    let mut several = h.consumer_config("property-grown");
    several.event_types = vec!["crm.deal.won".into(), "crm.deal.lost".into()];
    let (stop, second) = run(&h, several.clone()).await;
    eventually(Duration::from_secs(10), "the filter changed", || async {
        server_filter(&h, "property-grown").await == filter("*")
    })
    .await;
    commit(&h, 1, "crm.deal.lost", 3).await;
    commit(&h, 1, "crm.deal.won", 4).await;
    h.relay().await.run_once().await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the new events applied",
        || async { applied_deals(&h).await.ends_with(&[3, 4]) },
    )
    .await;
    stop.send(true).unwrap();
    second.await.unwrap();

    // Started again as it is now (a restart): it carries on.
    let (_stop, _third) = run(&h, several).await;
    commit(&h, 1, "crm.deal.lost", 5).await;
    h.relay().await.run_once().await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the next event applied",
        || async { applied_deals(&h).await.ends_with(&[5]) },
    )
    .await;
    let applied = applied_deals(&h).await;
    // Deal 2's lost came before the change: the server had passed over it, or had not
    // yet looked that far (then it is delivered once, after the change).
    let others: Vec<i64> = applied.iter().copied().filter(|d| *d != 2).collect();
    assert_eq!(
        others,
        vec![1, 3, 4, 5],
        "the first won once, then the new ones in order"
    );
    assert!(
        applied.iter().filter(|d| **d == 2).count() <= 1,
        "{applied:?}"
    );
}

/// Takes longer than the consumer's AckWait over each event, then records it.
struct Slow;

impl Handler for Slow {
    async fn handle(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        Recorder.handle(tx, event).await
    }
}

#[tokio::test]
async fn a_handler_slower_than_ack_wait_keeps_its_message_and_is_not_redelivered_under_it() {
    let h = Harness::new().await;
    let mut config = h.consumer_config("property-slow");
    config.ack_wait = Duration::from_millis(400);
    h.spawn_relay().await;
    h.spawn_consumer(config, Slow).await;
    h.win(1, 11, "won").await;
    h.win(1, 12, "won").await;
    eventually(Duration::from_secs(15), "both applied", || async {
        h.effects().await == (2, 1)
    })
    .await;
    // Each event delivered once: the in-progress acks held it past three AckWaits.
    assert_eq!(h.metrics.deliveries("property-slow"), 2);
}
