//! Faults: a relay killed between PubAck and mark; a broker down for seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn a_relay_killed_between_publish_and_mark_republishes_duplicates_that_apply_once() {
    let h = Harness::new().await;
    for deal in 1..=5 {
        h.win(9, deal, "won").await;
    }
    // Published and acknowledged, never marked: what a crash leaves behind.
    let crashed = h.relay().await.run_once_without_marking().await.unwrap();
    assert_eq!(crashed.sent, 0);
    assert_eq!(
        h.scalar("SELECT count(*) FROM crm.outbox_events WHERE sent_at IS NULL")
            .await,
        5
    );
    assert_eq!(h.stream_messages().await, 5);

    h.spawn_consumer(h.consumer_config("property-once"), Recorder)
        .await;
    let round = h.relay().await.run_once().await.unwrap();
    assert_eq!(
        (round.sent, round.duplicates),
        (5, 5),
        "JetStream saw them before"
    );
    assert_eq!(h.stream_messages().await, 5, "no second copy in the stream");
    eventually(Duration::from_secs(10), "every event applied", || async {
        h.effects().await.0 == 5
    })
    .await;
    assert_eq!(h.effects().await, (5, 1), "each once");
    assert_eq!(h.metrics.duplicates(PRODUCER), 5);
}

#[tokio::test]
async fn a_consumer_redelivered_an_applied_event_has_no_second_effect() {
    let h = Harness::new().await;
    h.win(9, 1, "won").await;
    h.relay().await.run_once().await.unwrap();
    // The durable consumer is deleted and made again (an operator's replay): the stream
    // delivers the event a second time, and the inbox absorbs it.
    h.spawn_consumer(h.consumer_config("property-replay"), Recorder)
        .await;
    eventually(Duration::from_secs(10), "applied", || async {
        h.effects().await.0 == 1
    })
    .await;
    let js = async_nats::jetstream::new(h.client().await);
    let stream = js.get_stream(&h.topology.stream).await.unwrap();
    stream.delete_consumer("property-replay").await.unwrap();
    h.spawn_consumer(h.consumer_config("property-replay"), Recorder)
        .await;
    eventually(Duration::from_secs(10), "redelivered", || async {
        h.metrics.deliveries("property-replay") >= 2
    })
    .await;
    assert_eq!(h.effects().await, (1, 1));
}

#[tokio::test]
async fn a_broker_stopped_for_ten_seconds_under_writes_loses_nothing_and_applies_nothing_twice() {
    let mut h = Harness::new().await;
    h.spawn_relay().await;
    h.spawn_consumer(h.consumer_config("property-outage"), Recorder)
        .await;

    // A steady stream of committed events, as WinDeal calls would write them.
    let writing = Arc::new(AtomicBool::new(true));
    let written = Arc::new(AtomicI64::new(0));
    let writer = {
        let app = h.producer.clone();
        let writing = writing.clone();
        let written = written.clone();
        tokio::spawn(async move {
            let mut deal = 0;
            while writing.load(Ordering::SeqCst) && deal < 2_000 {
                deal += 1;
                let mut tx = app
                    .begin(1 + deal % 3)
                    .await
                    .expect("writes never wait on NATS");
                fusion_events::outbox::append(&mut tx, PRODUCER, won(deal, "won"))
                    .await
                    .expect("append");
                tx.commit().await.expect("commit");
                written.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    eventually(
        Duration::from_secs(10),
        "flowing before the outage",
        || async { h.effects().await.0 >= 10 },
    )
    .await;
    h.nats.stop();
    let before = written.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await; // the outage itself, not an assertion
    assert!(
        written.load(Ordering::SeqCst) > before + 100,
        "writes went on while the broker was down"
    );
    h.nats.resume();
    tokio::time::sleep(Duration::from_secs(1)).await; // writes after the return, too
    writing.store(false, Ordering::SeqCst);
    writer.await.unwrap();
    let total = written.load(Ordering::SeqCst);
    eventually(Duration::from_secs(60), "every event delivered", || async {
        h.effects().await.0 == total
    })
    .await;
    assert_eq!(h.effects().await, (total, 1), "none applied twice");
    assert_eq!(
        h.scalar("SELECT count(*) FROM crm.outbox_events WHERE sent_at IS NULL")
            .await,
        0
    );
}
