//! ImportLeads: streamed batches checked row by row, all or nothing unless bad rows are
//! skipped, dry runs, dedupe by email, assignees checked with identity, retries.

use tonic::Code;

use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::import_leads_request::Payload;

use crate::helpers::{TestApp, User, expect_code};

fn options(o: pb::ImportLeadsOptions) -> pb::ImportLeadsRequest {
    pb::ImportLeadsRequest {
        payload: Some(Payload::Options(o)),
    }
}

fn batch(leads: Vec<pb::Lead>) -> pb::ImportLeadsRequest {
    pb::ImportLeadsRequest {
        payload: Some(Payload::Batch(pb::ImportLeadsBatch { leads })),
    }
}

fn row(n: usize) -> pb::Lead {
    pb::Lead {
        first_name: "Buyer".into(),
        last_name: format!("Number {n:05}"),
        email: format!("buyer{n}@example.com"),
        phone: format!("0412 {:03} {:03}", n / 1000, n % 1000),
        source: "expo".into(),
        ..Default::default()
    }
}

/// Sends `rows` in batches of `size` after `opts`.
async fn import(
    app: &TestApp,
    who: &User,
    opts: pb::ImportLeadsOptions,
    rows: Vec<pb::Lead>,
    size: usize,
) -> Result<pb::ImportLeadsResponse, tonic::Status> {
    let mut messages = vec![options(opts)];
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        messages.push(batch(rows.by_ref().take(size).collect()));
    }
    app.leads()
        .import_leads(who.req(futures::stream::iter(messages)))
        .await
        .map(|r| r.into_inner())
}

async fn lead_count(app: &TestApp, who: &User) -> i32 {
    app.send(
        who,
        pb::ListLeadsRequest {
            page_size: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .total_size
}

#[tokio::test]
async fn an_import_loads_every_valid_row_across_batches() {
    let app = TestApp::spawn().await;
    // Every tenth row is assigned, the rest are not: rows need not look alike.
    let rows: Vec<pb::Lead> = (0..2500)
        .map(|n| pb::Lead {
            assignee_user_id: if n % 10 == 0 { app.agent.user_id } else { 0 },
            ..row(n)
        })
        .collect();
    let result = import(
        &app,
        &app.agent,
        pb::ImportLeadsOptions::default(),
        rows,
        1000,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            result.received_count,
            result.created_count,
            result.invalid_count,
            result.committed
        ),
        (2500, 2500, 0, true)
    );
    assert_eq!(lead_count(&app, &app.agent).await, 2500);
    let assigned = app
        .send(
            &app.agent,
            pb::ListLeadsRequest {
                filter: format!("assignee_user_id = {}", app.agent.user_id),
                page_size: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .total_size;
    assert_eq!(assigned, 250);
    let one = app
        .send(
            &app.agent,
            pb::ListLeadsRequest {
                filter: r#"last_name = "Number 01234""#.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .leads
        .remove(0);
    assert_eq!(
        (one.status.as_str(), one.phone_e164.as_str()),
        ("new", "+61412001234")
    );
    assert_eq!(lead_count(&app, &app.globex).await, 0);
}

#[tokio::test]
async fn one_bad_row_leaves_nothing_unless_bad_rows_are_skipped() {
    let app = TestApp::spawn().await;
    let rows = || {
        let mut rows: Vec<pb::Lead> = (0..1500).map(row).collect();
        rows[2].email = "not an email".into();
        rows[1200].last_name = String::new();
        rows[1200].status = "imaginary".into();
        rows
    };
    let all_or_nothing = import(
        &app,
        &app.agent,
        pb::ImportLeadsOptions::default(),
        rows(),
        500,
    )
    .await
    .unwrap();
    assert!(!all_or_nothing.committed);
    assert_eq!(
        (all_or_nothing.invalid_count, all_or_nothing.created_count),
        (2, 0)
    );
    let errors: Vec<(i32, &str)> = all_or_nothing
        .errors
        .iter()
        .map(|e| (e.row_number, e.field.as_str()))
        .collect();
    assert_eq!(
        errors,
        [(3, "email"), (1201, "last_name"), (1201, "status")]
    );
    assert_eq!(lead_count(&app, &app.agent).await, 0, "nothing was kept");

    let skipping = import(
        &app,
        &app.agent,
        pb::ImportLeadsOptions {
            skip_invalid_rows: true,
            ..Default::default()
        },
        rows(),
        500,
    )
    .await
    .unwrap();
    assert!(skipping.committed);
    assert_eq!((skipping.invalid_count, skipping.created_count), (2, 1498));
    assert_eq!(lead_count(&app, &app.agent).await, 1498);
}

#[tokio::test]
async fn a_dry_run_counts_without_writing_and_dedupe_skips_known_emails() {
    let app = TestApp::spawn().await;
    let dry = import(
        &app,
        &app.agent,
        pb::ImportLeadsOptions {
            dry_run: true,
            ..Default::default()
        },
        (0..10).map(row).collect(),
        4,
    )
    .await
    .unwrap();
    assert_eq!((dry.created_count, dry.committed), (10, false));
    assert_eq!(lead_count(&app, &app.agent).await, 0);

    app.create(&app.agent, row(1)).await.unwrap();
    let mut rows: Vec<pb::Lead> = (0..5).map(row).collect();
    rows.push(pb::Lead {
        email: " BUYER3@example.com".into(),
        ..row(99)
    });
    let deduped = import(
        &app,
        &app.agent,
        pb::ImportLeadsOptions {
            dedupe_by_email: true,
            ..Default::default()
        },
        rows,
        2,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            deduped.created_count,
            deduped.duplicate_count,
            deduped.invalid_count
        ),
        (4, 2, 0)
    );
    assert_eq!(lead_count(&app, &app.agent).await, 5);
}

#[tokio::test]
async fn assignees_are_checked_with_identity_and_a_retry_returns_the_first_result() {
    let app = TestApp::spawn().await;
    let mut rows: Vec<pb::Lead> = (0..6).map(row).collect();
    for (i, lead) in rows.iter_mut().enumerate() {
        lead.assignee_user_id = if i % 2 == 0 {
            app.agent.user_id
        } else {
            app.globex.user_id
        };
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    let opts = pb::ImportLeadsOptions {
        skip_invalid_rows: true,
        request_id: request_id.clone(),
        ..Default::default()
    };
    let first = import(&app, &app.acme, opts.clone(), rows.clone(), 3)
        .await
        .unwrap();
    assert_eq!((first.created_count, first.invalid_count), (3, 3));
    assert!(first.errors.iter().all(|e| e.field == "assignee_user_id"));
    let again = import(&app, &app.acme, opts, rows, 3).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(lead_count(&app, &app.acme).await, 3);
    let mine = app
        .send(
            &app.acme,
            pb::ListLeadsRequest {
                filter: format!("assignee_user_id = {}", app.agent.user_id),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(mine.total_size, 3);
}

#[tokio::test]
async fn the_stream_must_open_with_options_and_batches_stay_small() {
    let app = TestApp::spawn().await;
    let mut leads = app.leads();
    expect_code(
        leads
            .import_leads(
                app.agent
                    .req(futures::stream::iter(vec![batch(vec![row(1)])])),
            )
            .await,
        Code::InvalidArgument,
    );
    expect_code(
        import(
            &app,
            &app.agent,
            pb::ImportLeadsOptions::default(),
            (0..1001).map(row).collect(),
            1001,
        )
        .await,
        Code::InvalidArgument,
    );
    expect_code(
        import(
            &app,
            &app.viewer,
            pb::ImportLeadsOptions::default(),
            vec![row(1)],
            1,
        )
        .await,
        Code::PermissionDenied,
    );
    assert_eq!(lead_count(&app, &app.agent).await, 0);
}

#[tokio::test]
async fn a_stalled_import_holds_no_connection_and_ends_when_idle() {
    let app = TestApp::spawn().await;
    // One pooled connection: an import holding it while its client pauses would leave
    // every other call of this replica waiting for it.
    let crm = TestApp::replica_configured(
        &app.db,
        fusion_testkit::connect_channel(app.identity.grpc_addr()).await,
        app.property_channel.clone(),
        |c| {
            c.service.db_max_connections = 1;
            c.service.db_acquire_timeout = std::time::Duration::from_millis(500);
            c.service.stream_idle_timeout = std::time::Duration::from_secs(2);
        },
    )
    .await;
    let channel = fusion_testkit::connect_channel(crm.grpc_addr()).await;
    let leads =
        || fusion_proto::crm::v1::lead_service_client::LeadServiceClient::new(channel.clone());

    let (mut sender, messages) = futures::channel::mpsc::channel(4);
    use futures::SinkExt as _;
    sender
        .send(options(pb::ImportLeadsOptions::default()))
        .await
        .unwrap();
    sender.send(batch(vec![row(1), row(2)])).await.unwrap();
    let mut client = leads();
    let request = app.agent.req(messages);
    let import = tokio::spawn(async move { client.import_leads(request).await });
    // Give the import time to read what was sent; the client then pauses.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let listed = leads()
        .list_leads(app.agent.req(pb::ListLeadsRequest::default()))
        .await
        .expect("the paused import holds no connection");
    assert_eq!(listed.get_ref().leads.len(), 0);

    let status = tokio::time::timeout(std::time::Duration::from_secs(10), import)
        .await
        .expect("a stalled import ends on its own")
        .unwrap()
        .expect_err("the client never finished");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(fusion_testkit::reason(&status), "STREAM_IDLE");
    drop(sender);
    assert_eq!(lead_count(&app, &app.agent).await, 0, "nothing was written");
}
