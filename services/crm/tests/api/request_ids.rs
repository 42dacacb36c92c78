//! AIP-155 request ids on crm's custom methods with a side effect (WinDeal, LoseDeal,
//! MoveDealStage, AssignLead, SetLeadStatus, StartTask, CompleteTask, CancelTask, ReopenTask): a retry
//! with the same id and request returns the first response and acts once, even after
//! the record has changed since; the same id with another request is
//! INVALID_ARGUMENT (REQUEST_ID_REUSED); a malformed id is INVALID_ARGUMENT.

use tonic::{Code, Status};

use fusion_proto::crm::v1 as pb;
use fusion_testkit::reason;

use crate::helpers::{TestApp, User, assert_invalid, expect_code};

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Asserts `result` is the refusal of a request id reused for another request.
#[track_caller]
fn assert_reused<T: std::fmt::Debug>(result: Result<T, Status>) {
    let status = assert_invalid(result, &["request_id"]);
    assert_eq!(reason(&status), "REQUEST_ID_REUSED", "{status:?}");
}

async fn deal(app: &TestApp, who: &User, title: &str) -> pb::Deal {
    app.create(
        who,
        pb::Deal {
            title: title.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn get_deal(app: &TestApp, id: i64) -> pb::Deal {
    app.get::<pb::Deal>(&app.agent, id).await.unwrap()
}

/// The `deal.won` events of deal `id`.
async fn won_events(app: &TestApp, id: i64) -> i64 {
    let db = app.crm.state().db.clone();
    let mut tx = db.begin(app.acme.tenant_id).await.unwrap();
    let n = sqlx::query_scalar(
        "SELECT count(*) FROM crm.outbox_events
          WHERE aggregate_type = 'deal' AND aggregate_id = $1 AND event_type = 'crm.deal.won'",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    n
}

#[tokio::test]
async fn a_retried_win_returns_the_first_result_and_announces_the_win_once() {
    let app = TestApp::spawn().await;
    let d = deal(&app, &app.agent, "Retried win").await;
    let win = |reason: &str, request_id: &str| {
        app.agent.req(pb::WinDealRequest {
            id: d.id,
            reason: reason.into(),
            etag: d.etag.clone(),
            request_id: request_id.into(),
            ..Default::default()
        })
    };
    let id = new_id();
    let first = app
        .deals()
        .win_deal(win("loved it", &id))
        .await
        .unwrap()
        .into_inner();
    // The reply was lost; the client retries with the same id: the same answer (even
    // with the etag it sent, now stale), and still one event for property.
    let retried = app
        .deals()
        .win_deal(win("loved it", &id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried, first);
    assert_eq!(won_events(&app, d.id).await, 1);
    // Without the id, a retry cannot tell its own success from a rival's: with the
    // etag it sent, the deal changed; without it, the deal is closed.
    let plain = expect_code(
        app.deals().win_deal(win("loved it", "")).await,
        Code::Aborted,
    );
    assert_eq!(reason(&plain), "ETAG_MISMATCH");
    let plain = expect_code(
        app.send(
            &app.agent,
            pb::WinDealRequest {
                id: d.id,
                reason: "loved it".into(),
                ..Default::default()
            },
        )
        .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&plain), "DEAL_CLOSED");
    // The same id with another request, and a malformed id.
    assert_reused(app.deals().win_deal(win("another reason", &id)).await);
    assert_invalid(
        app.deals().win_deal(win("loved it", "not-a-uuid")).await,
        &["request_id"],
    );
    assert_eq!(won_events(&app, d.id).await, 1);
}

#[tokio::test]
async fn retried_losses_and_moves_act_once() {
    let app = TestApp::spawn().await;

    // LoseDeal: a retry after the deal was reopened returns the loss, and leaves the
    // deal open.
    let d = deal(&app, &app.agent, "Retried loss").await;
    let lose = |why: &str, request_id: &str| {
        app.agent.req(pb::LoseDealRequest {
            id: d.id,
            reason: why.into(),
            request_id: request_id.into(),
            ..Default::default()
        })
    };
    let id = new_id();
    let lost = app
        .deals()
        .lose_deal(lose("finance declined", &id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lost.status, "lost");
    app.send(
        &app.agent,
        pb::MoveDealStageRequest {
            id: d.id,
            stage: "property_enquiry".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let retried = app
        .deals()
        .lose_deal(lose("finance declined", &id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried, lost);
    assert_eq!(get_deal(&app, d.id).await.status, "open");
    assert_reused(app.deals().lose_deal(lose("changed mind", &id)).await);
    assert_invalid(
        app.deals().lose_deal(lose("finance declined", "42")).await,
        &["request_id"],
    );

    // MoveDealStage: a retry after a later move returns the first move and does not
    // move the deal back.
    let d = deal(&app, &app.agent, "Retried move").await;
    let move_to = |stage: &str, request_id: &str| {
        app.agent.req(pb::MoveDealStageRequest {
            id: d.id,
            stage: stage.into(),
            request_id: request_id.into(),
            ..Default::default()
        })
    };
    let id = new_id();
    let moved = app
        .deals()
        .move_deal_stage(move_to("signed_contract", &id))
        .await
        .unwrap()
        .into_inner();
    app.deals()
        .move_deal_stage(move_to("unconditional", ""))
        .await
        .unwrap();
    let retried = app
        .deals()
        .move_deal_stage(move_to("signed_contract", &id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried, moved);
    assert_eq!(get_deal(&app, d.id).await.stage, "unconditional");
    assert_reused(
        app.deals()
            .move_deal_stage(move_to("construction", &id))
            .await,
    );
    assert_invalid(
        app.deals()
            .move_deal_stage(move_to("construction", "x"))
            .await,
        &["request_id"],
    );
}

#[tokio::test]
async fn a_retried_assignment_acts_once() {
    let app = TestApp::spawn().await;
    let lead = app.lead(&app.agent, "Assigned").await;
    let assign = |to: i64, request_id: &str| {
        app.acme.req(pb::AssignLeadRequest {
            id: lead.id,
            assignee_user_id: to,
            etag: String::new(),
            request_id: request_id.into(),
        })
    };
    let id = new_id();
    let first = app
        .leads()
        .assign_lead(assign(app.agent.user_id, &id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.assignee_user_id, app.agent.user_id);
    // Unassigned since; the retry returns the first answer and does not reassign.
    app.leads().assign_lead(assign(0, "")).await.unwrap();
    let retried = app
        .leads()
        .assign_lead(assign(app.agent.user_id, &id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried, first);
    let now = app.get::<pb::Lead>(&app.acme, lead.id).await.unwrap();
    assert_eq!(now.assignee_user_id, 0);
    assert_reused(app.leads().assign_lead(assign(app.acme.user_id, &id)).await);
    assert_invalid(
        app.leads()
            .assign_lead(assign(app.agent.user_id, "{nope}"))
            .await,
        &["request_id"],
    );
}

#[tokio::test]
async fn a_retried_lead_status_change_acts_once() {
    let app = TestApp::spawn().await;
    let lead = app.lead(&app.agent, "Status").await;
    let set = |status: &str, request_id: &str| {
        app.agent.req(pb::SetLeadStatusRequest {
            id: lead.id,
            status: status.into(),
            etag: String::new(),
            request_id: request_id.into(),
        })
    };
    let id = new_id();
    let hot = app
        .leads()
        .set_lead_status(set("hot", &id))
        .await
        .unwrap()
        .into_inner();
    app.leads()
        .set_lead_status(set("call_back", ""))
        .await
        .unwrap();
    let retried = app
        .leads()
        .set_lead_status(set("hot", &id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried, hot);
    let now = app.get::<pb::Lead>(&app.agent, lead.id).await.unwrap();
    assert_eq!(now.status, "call_back");
    assert_reused(app.leads().set_lead_status(set("nurture", &id)).await);
    assert_invalid(
        app.leads().set_lead_status(set("hot", "nope")).await,
        &["request_id"],
    );
}

#[tokio::test]
async fn retried_task_status_changes_act_once() {
    let app = TestApp::spawn().await;
    let t = app
        .create(
            &app.agent,
            pb::Task {
                title: "Call back".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut tasks = app.tasks();
    let who = &app.agent;
    let status = |task: pb::Task| task.status;
    let (start, complete, cancel, reopen) = (new_id(), new_id(), new_id(), new_id());

    let started = tasks
        .start_task(who.req(pb::StartTaskRequest {
            id: t.id,
            etag: t.etag.clone(),
            request_id: start.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let completed = tasks
        .complete_task(who.req(pb::CompleteTaskRequest {
            id: t.id,
            etag: String::new(),
            request_id: complete.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    // Starting a completed task is refused; the retried start returns its first
    // answer instead (and the task stays completed).
    let retried = tasks
        .start_task(who.req(pb::StartTaskRequest {
            id: t.id,
            etag: t.etag.clone(),
            request_id: start.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried, started);
    assert_eq!(status(retried), "in_progress");
    let reopened = tasks
        .reopen_task(who.req(pb::ReopenTaskRequest {
            id: t.id,
            etag: String::new(),
            request_id: reopen.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let cancelled = tasks
        .cancel_task(who.req(pb::CancelTaskRequest {
            id: t.id,
            etag: String::new(),
            request_id: cancel.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (status(completed.clone()), status(reopened.clone())),
        ("completed".to_owned(), "open".to_owned())
    );
    // Each retry returns its first answer; the task stays cancelled.
    let again = tasks
        .complete_task(who.req(pb::CompleteTaskRequest {
            id: t.id,
            etag: String::new(),
            request_id: complete.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, completed);
    let again = tasks
        .reopen_task(who.req(pb::ReopenTaskRequest {
            id: t.id,
            etag: String::new(),
            request_id: reopen.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, reopened);
    let again = tasks
        .cancel_task(who.req(pb::CancelTaskRequest {
            id: t.id,
            etag: String::new(),
            request_id: cancel.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, cancelled);
    let now = tasks
        .get_task(who.req(pb::GetTaskRequest { id: t.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (now.status.as_str(), now.etag),
        ("cancelled", cancelled.etag)
    );

    // The same ids with other requests (another etag), and malformed ids.
    let other = "\"9\"".to_owned();
    assert_reused(
        tasks
            .start_task(who.req(pb::StartTaskRequest {
                id: t.id,
                etag: other.clone(),
                request_id: start,
            }))
            .await,
    );
    assert_reused(
        tasks
            .complete_task(who.req(pb::CompleteTaskRequest {
                id: t.id,
                etag: other.clone(),
                request_id: complete,
            }))
            .await,
    );
    assert_reused(
        tasks
            .cancel_task(who.req(pb::CancelTaskRequest {
                id: t.id,
                etag: other.clone(),
                request_id: cancel,
            }))
            .await,
    );
    assert_reused(
        tasks
            .reopen_task(who.req(pb::ReopenTaskRequest {
                id: t.id,
                etag: other,
                request_id: reopen,
            }))
            .await,
    );
    assert_invalid(
        tasks
            .start_task(who.req(pb::StartTaskRequest {
                id: t.id,
                etag: String::new(),
                request_id: "not-a-uuid".into(),
            }))
            .await,
        &["request_id"],
    );
}
