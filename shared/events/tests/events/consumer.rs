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
        let mut tx = h.app.begin(tenant).await.unwrap();
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
        let mut tx = h.app.begin(1).await.unwrap();
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
