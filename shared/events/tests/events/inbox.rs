//! Inbox pruning: rows past the retention go, across tenants, in batches; newer ones
//! stay, so a redelivery of a recent event still finds its row.

use std::time::Duration;

use fusion_events::{InboxPruneConfig, InboxPruner};

use crate::helpers::{CONSUMER_SCHEMA, Harness};

#[tokio::test]
async fn the_inbox_loses_rows_past_the_retention_in_every_tenant_and_keeps_newer_ones() {
    let h = Harness::new().await;
    // Six old rows over two tenants, four recent ones.
    for (tenant, age_days) in [
        (1, 9),
        (1, 9),
        (1, 30),
        (2, 9),
        (2, 9),
        (2, 10),
        (2, 6),
        (1, 1),
        (2, 0),
        (2, 7),
    ] {
        sqlx::query(
            "INSERT INTO property.inbox_events (consumer, event_id, tenant_id, event_type, created_at)
             VALUES ('property-test', gen_random_uuid(), $1, 'crm.deal.won',
                     now() - make_interval(days => $2))",
        )
        .bind(tenant)
        .bind(age_days)
        .execute(&h.admin)
        .await
        .expect("inbox row");
    }
    let mut config = InboxPruneConfig::new(CONSUMER_SCHEMA);
    assert_eq!(
        config.retention,
        Duration::from_secs(8 * 86_400),
        "the stream's week plus a day"
    );
    config.batch = 2;
    let pruner = InboxPruner::new(h.owner.clone(), config);

    assert_eq!(
        pruner.prune().await.expect("pruning"),
        6,
        "every row older than 8 days, in batches of 2"
    );
    assert_eq!(
        h.scalar("SELECT count(*) FROM property.inbox_events").await,
        4
    );
    assert_eq!(
        h.scalar(
            "SELECT count(*) FROM property.inbox_events WHERE created_at < now() - interval '8 days'"
        )
        .await,
        0
    );
    assert_eq!(
        pruner.prune().await.expect("pruning again"),
        0,
        "nothing left to prune"
    );
}

#[tokio::test]
async fn the_application_role_cannot_prune_another_tenants_inbox() {
    let h = Harness::new().await;
    for tenant in [1_i64, 2] {
        sqlx::query(
            "INSERT INTO property.inbox_events (consumer, event_id, tenant_id, event_type, created_at)
             VALUES ('property-test', gen_random_uuid(), $1, 'crm.deal.won', now() - interval '30 days')",
        )
        .bind(tenant)
        .execute(&h.admin)
        .await
        .expect("inbox row");
    }
    // The service's own role has no DELETE on its inbox at all: only the owner prunes.
    let mut tx = h.consumer.begin(1).await.expect("begin");
    let refused = sqlx::query("DELETE FROM property.inbox_events")
        .execute(&mut *tx)
        .await;
    assert!(refused.is_err(), "the application role deleted inbox rows");
    drop(tx);
    assert_eq!(
        h.scalar("SELECT count(*) FROM property.inbox_events").await,
        2
    );
}
