//! The outbox and the relay.

use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt as _;

use fusion_events::decode_envelope;
use fusion_proto::crm::v1::DealWon;

use crate::helpers::*;

#[tokio::test]
async fn an_event_exists_only_if_its_change_commits() {
    let h = Harness::new().await;
    let mut tx = h.producer.begin(1).await.unwrap();
    fusion_events::outbox::append(&mut tx, PRODUCER, won(1, "won"))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(h.scalar("SELECT count(*) FROM crm.outbox_events").await, 0);

    let id = h.win(1, 2, "won").await;
    let (tenant, event_type, aggregate, aggregate_id): (i64, String, String, i64) = sqlx::query_as(
        "SELECT tenant_id, event_type, aggregate_type, aggregate_id
               FROM crm.outbox_events WHERE event_id = $1 AND sent_at IS NULL",
    )
    .bind(id)
    .fetch_one(&h.admin)
    .await
    .unwrap();
    assert_eq!(
        (
            tenant,
            event_type.as_str(),
            aggregate.as_str(),
            aggregate_id
        ),
        (1, WON, "deal", 2)
    );
}

#[tokio::test]
async fn the_relay_publishes_envelopes_with_the_event_id_as_nats_msg_id_and_marks_them_sent() {
    let h = Harness::new().await;
    let ids = [h.win(7, 1, "won").await, h.win(7, 2, "won").await];

    let round = h.relay().await.run_once().await.unwrap();
    assert_eq!(round.sent, 2);
    assert_eq!(
        h.scalar(
            "SELECT count(*) FROM crm.outbox_events WHERE sent_at IS NOT NULL AND attempts = 1"
        )
        .await,
        2
    );
    assert_eq!(h.metrics.relayed(PRODUCER), 2);
    assert_eq!(
        h.relay().await.run_once().await.unwrap().sent,
        0,
        "nothing left"
    );

    // Read the stream back: subject, header and envelope as the contract says.
    let js = jetstream::new(h.client().await);
    let stream = js.get_stream(&h.topology.stream).await.unwrap();
    for (seq, id) in (1u64..).zip(ids) {
        let message = stream.get_raw_message(seq).await.unwrap();
        assert_eq!(
            message.subject.as_str(),
            format!("{}.crm.deal.won", h.topology.prefix)
        );
        let msg_id = message
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned());
        assert_eq!(msg_id.as_deref(), Some(id.to_string().as_str()));
        let envelope = decode_envelope(&message.payload).unwrap();
        assert_eq!(envelope.event_id, id.to_string());
        assert_eq!(
            (envelope.tenant_id, envelope.aggregate_type.as_str()),
            (7, "deal")
        );
        assert!(envelope.occur_time.is_some());
        let won = <DealWon as prost::Message>::decode(envelope.payload.as_slice()).unwrap();
        assert_eq!(won.deal_id, envelope.aggregate_id);
    }
}

#[tokio::test]
async fn a_transaction_that_commits_after_a_later_one_is_still_relayed() {
    let h = Harness::new().await;
    let relay = h.relay().await;
    // Transaction 1 takes the smaller id but commits last.
    let mut first = h.producer.begin(3).await.unwrap();
    let early = fusion_events::outbox::append(&mut first, PRODUCER, won(1, "won"))
        .await
        .unwrap();
    let late = h.win(3, 2, "won").await;
    assert_eq!(
        relay.run_once().await.unwrap().sent,
        1,
        "only the committed one"
    );
    first.commit().await.unwrap();
    assert_eq!(
        relay.run_once().await.unwrap().sent,
        1,
        "the late commit too"
    );

    let js = jetstream::new(h.client().await);
    let stream = js.get_stream(&h.topology.stream).await.unwrap();
    let mut seen = Vec::new();
    for seq in 1..=2 {
        let message = stream.get_raw_message(seq).await.unwrap();
        seen.push(decode_envelope(&message.payload).unwrap().event_id);
    }
    assert_eq!(seen, vec![late.to_string(), early.to_string()]);
    assert_eq!(
        h.scalar("SELECT count(*) FROM crm.outbox_events WHERE sent_at IS NULL")
            .await,
        0
    );
}

#[tokio::test]
async fn the_relay_keeps_events_while_the_broker_is_down_and_publishes_them_when_it_returns() {
    let mut h = Harness::new().await;
    let relay = h.relay().await;
    h.nats.stop();
    // Writes do not depend on the broker.
    h.win(4, 1, "won").await;
    let err = relay.run_once().await;
    assert!(err.is_err(), "no broker, no PubAck: {err:?}");
    assert_eq!(
        h.scalar("SELECT count(*) FROM crm.outbox_events WHERE sent_at IS NULL")
            .await,
        1
    );
    assert!(relay.measure_lag().await.unwrap() > 0.0, "the event waits");

    h.nats.resume();
    eventually(
        Duration::from_secs(15),
        "relayed after the broker returned",
        || async { relay.run_once().await.is_ok_and(|r| r.sent == 1) },
    )
    .await;
    assert_eq!(relay.measure_lag().await.unwrap(), 0.0);
    assert_eq!(h.metrics.relay_lag(PRODUCER), 0.0);
}

#[tokio::test]
async fn sent_events_are_pruned_after_the_retention_and_unsent_ones_never() {
    let h = Harness::new().await;
    h.win(5, 1, "won").await;
    let mut config = h.relay_config();
    config.retention = Duration::ZERO;
    let relay = fusion_events::relay::Relay::new(
        h.owner.clone(),
        h.client().await,
        config,
        h.metrics.clone(),
    );
    relay.run_once().await.unwrap();
    h.win(5, 2, "won").await;
    assert_eq!(relay.prune().await.unwrap(), 1);
    assert_eq!(
        h.scalar("SELECT count(*) FROM crm.outbox_events WHERE sent_at IS NULL")
            .await,
        1,
        "the unsent event stays"
    );
    // With the default retention nothing recent goes.
    relay.run_once().await.unwrap();
    assert_eq!(h.relay().await.prune().await.unwrap(), 0);
}

#[tokio::test]
async fn the_stream_is_created_once_and_its_settings_kept_up_to_date() {
    let h = Harness::new().await;
    let js = jetstream::new(h.client().await);
    h.topology.ensure_stream(&js).await.unwrap();
    let mut wider = h.topology.clone();
    wider.duplicate_window = Duration::from_secs(300);
    wider.ensure_stream(&js).await.unwrap();
    wider.ensure_stream(&js).await.unwrap();
    let mut stream = js.get_stream(&h.topology.stream).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(
        info.config.subjects,
        vec![format!("{}.>", h.topology.prefix)]
    );
    assert_eq!(info.config.duplicate_window, Duration::from_secs(300));
    let names: Vec<String> = js
        .stream_names()
        .filter_map(|n| async move { n.ok() })
        .collect()
        .await;
    assert_eq!(names, vec![h.topology.stream.clone()]);
}

#[tokio::test]
async fn the_relay_runs_across_tenants_while_the_application_role_sees_only_its_own_rows() {
    let h = Harness::new().await;
    h.win(1, 1, "won").await;
    h.win(2, 2, "won").await;
    assert_eq!(h.relay().await.run_once().await.unwrap().sent, 2);
    // The application role sees one tenant's rows and cannot mark or delete them.
    let mut tx = h.producer.begin(1).await.unwrap();
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM crm.outbox_events")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, 1);
    let denied = sqlx::query("UPDATE crm.outbox_events SET sent_at = NULL")
        .execute(&mut *tx)
        .await;
    assert!(denied.is_err(), "the service may not unmark events");
    drop(tx);
    // The owner's cross-tenant view is the outbox, not the tenant tables.
    let mut tx = h.consumer.begin(1).await.unwrap();
    sqlx::query(
        "INSERT INTO property.test_effects (tenant_id, event_id, deal_id)
         VALUES (1, gen_random_uuid(), 1)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let effects: i64 = sqlx::query_scalar("SELECT count(*) FROM property.test_effects")
        .fetch_one(&h.owner)
        .await
        .unwrap();
    assert_eq!(effects, 0, "the owner sees no tenant's effects");
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM crm.outbox_events")
        .fetch_one(&h.owner)
        .await
        .unwrap();
    assert_eq!(outbox, 2, "but every tenant's outbox");
}

#[tokio::test]
async fn a_commit_that_appends_an_event_wakes_the_relay_at_once() {
    let h = Harness::new().await;
    let mut config = h.relay_config();
    // Polling alone would take a minute.
    config.idle_poll = Duration::from_secs(60);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    fusion_events::relay::Relay::new(h.owner.clone(), h.client().await, config, h.metrics.clone())
        .spawn(stopped);
    // Let the first (empty) round pass, so the relay is idle and listening.
    eventually(Duration::from_secs(5), "the first round", || async {
        h.stream_exists().await
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await; // settle into the idle wait
    h.win(6, 1, "won").await;
    eventually(
        Duration::from_secs(5),
        "relayed without waiting for a poll",
        || async { h.metrics.relayed(PRODUCER) == 1 },
    )
    .await;
    let _ = stop.send(true);
}
