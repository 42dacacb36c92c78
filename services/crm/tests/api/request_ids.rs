//! AIP-155 request ids on crm's custom methods with a side effect (WinDeal, LoseDeal,
//! MoveDealStage, AssignLead, SetLeadStatus, StartTask, CompleteTask, CancelTask,
//! ReopenTask): a retry with the same id and request returns the first response and
//! acts once, even after the record has changed since; the same id with another
//! request is INVALID_ARGUMENT (REQUEST_ID_REUSED); a malformed id is INVALID_ARGUMENT.
//! [`acts_once`] holds that contract; each method is one call of it.

use std::fmt::Debug;

use tonic::{Code, Status};

use fusion_proto::crm::v1 as pb;
use fusion_testkit::reason;

use crate::calls::TaskMove::{Cancel, Complete, Reopen, Start};
use crate::helpers::{TestApp, assert_invalid, expect_code};

/// Which request a test sends under a request id: the first call's, or another one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    First,
    Other,
}

/// Request ids that are not UUIDs.
const MALFORMED: &[&str] = &["not-a-uuid", "42", "x", "{nope}", "nope"];

/// The AIP-155 contract of one custom method, which `call(body, request_id)` sends: the
/// first call with an id acts; after `meanwhile` has changed the record (without an
/// id) and answered with it, a retry with the same id and request returns the first
/// answer and does not act again, so `read` finds the record as `meanwhile` left it;
/// the same id with another request is REQUEST_ID_REUSED; a malformed id is
/// INVALID_ARGUMENT. Returns the first answer and the record as `read` found it.
async fn acts_once<T, F>(
    call: impl Fn(Body, String) -> F,
    meanwhile: impl Future<Output = Result<T, Status>>,
    read: impl Future<Output = Result<T, Status>>,
) -> (T, T)
where
    T: PartialEq + Debug,
    F: Future<Output = Result<T, Status>>,
{
    let id = uuid::Uuid::new_v4().to_string();
    let first = call(Body::First, id.clone())
        .await
        .expect("the first call acts");
    let changed = meanwhile.await.expect("the change meanwhile");
    let retried = call(Body::First, id.clone())
        .await
        .expect("the retry is answered");
    assert_eq!(retried, first, "a retry returns the first answer");
    let status = assert_invalid(call(Body::Other, id).await, &["request_id"]);
    assert_eq!(reason(&status), "REQUEST_ID_REUSED", "{status:?}");
    for malformed in MALFORMED {
        assert_invalid(
            call(Body::First, (*malformed).into()).await,
            &["request_id"],
        );
    }
    let now = read.await.expect("the record is read");
    assert_eq!(now, changed, "the retry did not act again");
    (first, now)
}

/// `first` for the first call's request, `other` for another one.
fn pick<T>(body: Body, first: T, other: T) -> T {
    if body == Body::First { first } else { other }
}

/// A deal of the agent's titled `title`.
async fn deal(app: &TestApp, title: &str) -> pb::Deal {
    let deal = pb::Deal {
        title: title.into(),
        ..Default::default()
    };
    app.create(&app.agent, deal).await.unwrap()
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
    let app = &TestApp::spawn().await;
    let d = &deal(app, "Retried win").await;
    let win = |body, request_id| {
        let reason = pick(body, "loved it", "another reason");
        let request = pb::WinDealRequest {
            id: d.id,
            reason: reason.into(),
            etag: d.etag.clone(),
            request_id,
            ..Default::default()
        };
        app.send(&app.agent, request)
    };
    // The reply was lost; the client retries with the same id: the same answer (even
    // with the etag it sent, now stale), and still one event for property.
    let read = || app.get::<pb::Deal>(&app.agent, d.id);
    acts_once(win, read(), read()).await;
    assert_eq!(won_events(app, d.id).await, 1);
    // Without the id, a retry cannot tell its own success from a rival's: with the
    // etag it sent, the deal changed; without it, the deal is closed.
    let plain = expect_code(win(Body::First, String::new()).await, Code::Aborted);
    assert_eq!(reason(&plain), "ETAG_MISMATCH");
    let without_etag = pb::WinDealRequest {
        id: d.id,
        reason: "loved it".into(),
        ..Default::default()
    };
    let plain = expect_code(
        app.send(&app.agent, without_etag).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&plain), "DEAL_CLOSED");
    assert_eq!(won_events(app, d.id).await, 1);
}

#[tokio::test]
async fn retried_losses_and_moves_act_once() {
    let app = &TestApp::spawn().await;
    let to_stage = |id, stage: &str, request_id| pb::MoveDealStageRequest {
        id,
        stage: stage.into(),
        request_id,
        ..Default::default()
    };

    // LoseDeal: a retry after the deal was reopened returns the loss, and leaves the
    // deal open.
    let d = deal(app, "Retried loss").await;
    let lose = |body, request_id| {
        let request = pb::LoseDealRequest {
            id: d.id,
            reason: pick(body, "finance declined", "changed mind").into(),
            request_id,
            ..Default::default()
        };
        app.send(&app.agent, request)
    };
    let reopen = app.send(
        &app.agent,
        to_stage(d.id, "property_enquiry", String::new()),
    );
    let read = app.get::<pb::Deal>(&app.agent, d.id);
    let (lost, now) = acts_once(lose, reopen, read).await;
    assert_eq!(
        (lost.status.as_str(), now.status.as_str()),
        ("lost", "open")
    );

    // MoveDealStage: a retry after a later move returns the first move and does not
    // move the deal back.
    let d = deal(app, "Retried move").await;
    let move_to = |body, request_id| {
        let stage = pick(body, "signed_contract", "construction");
        app.send(&app.agent, to_stage(d.id, stage, request_id))
    };
    let later = app.send(&app.agent, to_stage(d.id, "unconditional", String::new()));
    let read = app.get::<pb::Deal>(&app.agent, d.id);
    let (moved, now) = acts_once(move_to, later, read).await;
    let stages = (moved.stage.as_str(), now.stage.as_str());
    assert_eq!(stages, ("signed_contract", "unconditional"));
}

#[tokio::test]
async fn a_retried_assignment_acts_once() {
    let app = &TestApp::spawn().await;
    let lead = app.lead(&app.agent, "Assigned").await;
    let assign = |to, request_id| pb::AssignLeadRequest {
        id: lead.id,
        assignee_user_id: to,
        etag: String::new(),
        request_id,
    };
    let first = |body, request_id| {
        let to = pick(body, app.agent.user_id, app.acme.user_id);
        app.send(&app.acme, assign(to, request_id))
    };
    // Unassigned since; the retry returns the first answer and does not reassign.
    let unassign = app.send(&app.acme, assign(0, String::new()));
    let read = app.get::<pb::Lead>(&app.acme, lead.id);
    let (assigned, now) = acts_once(first, unassign, read).await;
    let assignees = (assigned.assignee_user_id, now.assignee_user_id);
    assert_eq!(assignees, (app.agent.user_id, 0));
}

#[tokio::test]
async fn a_retried_lead_status_change_acts_once() {
    let app = &TestApp::spawn().await;
    let lead = app.lead(&app.agent, "Status").await;
    let set = |status: &str, request_id| pb::SetLeadStatusRequest {
        id: lead.id,
        status: status.into(),
        etag: String::new(),
        request_id,
    };
    let hot =
        |body, request_id| app.send(&app.agent, set(pick(body, "hot", "nurture"), request_id));
    let call_back = app.send(&app.agent, set("call_back", String::new()));
    let read = app.get::<pb::Lead>(&app.agent, lead.id);
    let (first, now) = acts_once(hot, call_back, read).await;
    assert_eq!(
        (first.status.as_str(), now.status.as_str()),
        ("hot", "call_back")
    );
}

#[tokio::test]
async fn retried_task_status_changes_act_once() {
    let app = &TestApp::spawn().await;
    let task = pb::Task {
        title: "Call back".into(),
        ..Default::default()
    };
    let t = app.create(&app.agent, task).await.unwrap();
    // Each method, from where the task is: the status it answers with; then what
    // changes the task meanwhile (without a request id), and the status that leaves,
    // which a retry does not undo. Starting a completed task, for one, is refused: the
    // retried start returns its first answer instead.
    let cases = [
        (Start, "in_progress", Complete, "completed"),
        (Reopen, "open", Start, "in_progress"),
        (Complete, "completed", Reopen, "open"),
        (Cancel, "cancelled", Reopen, "open"),
    ];
    for (method, answered, meanwhile, left) in cases {
        // The first start sends the etag of the new task, stale for its retry; another
        // request sends another etag.
        let etag = if method == Start {
            t.etag.clone()
        } else {
            String::new()
        };
        let call = |body, request_id| {
            let etag = pick(body, etag.clone(), "\"9\"".to_owned());
            method.send_with_id(app, &app.agent, t.id, etag, request_id)
        };
        let change = meanwhile.send(app, &app.agent, t.id, "");
        let read = app.get::<pb::Task>(&app.agent, t.id);
        let (first, now) = acts_once(call, change, read).await;
        let statuses = (first.status.as_str(), now.status.as_str());
        assert_eq!(statuses, (answered, left), "{method:?}, then {meanwhile:?}");
    }
}
