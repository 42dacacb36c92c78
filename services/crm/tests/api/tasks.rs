//! Tasks: the standard methods (the record a task is about, checked in the caller's
//! tenant, is in `subjects`); the assignee checked with identity; CompleteTask and
//! ReopenTask; overdue, "assigned to me" and per-record lists with the page tokens
//! bound to them; isolation and permissions.

use std::time::Duration;

use tonic::Code;

use fusion_proto::crm::v1 as pb;

use crate::calls::TaskMove::{Cancel, Complete, Reopen, Start};
use crate::helpers::{TestApp, User, assert_invalid, expect_code, violated_fields};

/// `seconds` from now, on the wire.
pub fn from_now(seconds: i64) -> Option<prost_types::Timestamp> {
    let at = chrono::Utc::now() + chrono::Duration::seconds(seconds);
    Some(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    })
}

/// Creates a task titled `title` with the other fields of `task`.
async fn task(app: &TestApp, who: &User, title: &str, task: pb::Task) -> pb::Task {
    app.create(
        who,
        pb::Task {
            title: title.into(),
            ..task
        },
    )
    .await
    .unwrap_or_else(|e| panic!("task {title} created: {e:?}"))
}

fn titles(page: &pb::ListTasksResponse) -> Vec<&str> {
    page.tasks.iter().map(|t| t.title.as_str()).collect()
}

#[tokio::test]
async fn a_task_starts_open_at_normal_priority_assigned_by_its_creator() {
    let app = TestApp::spawn().await;
    let due = from_now(3600);
    let created = app
        .create(
            &app.agent,
            pb::Task {
                title: "Call Mia back".into(),
                description: "About lot 12".into(),
                due_time: due,
                // Output-only fields are ignored on create.
                assigner_user_id: app.acme.user_id,
                complete_time: from_now(0),
                overdue: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (created.status.as_str(), created.priority.as_str()),
        ("open", "normal")
    );
    assert_eq!(
        (
            created.tenant_id,
            created.assigner_user_id,
            created.assignee_user_id
        ),
        (app.acme.tenant_id, app.agent.user_id, 0)
    );
    assert_eq!(created.due_time, due);
    assert_eq!((created.complete_time, created.overdue), (None, false));
    assert_eq!(
        (created.taskable_type.as_str(), created.taskable_id),
        ("", 0)
    );
    let got = app.get::<pb::Task>(&app.viewer, created.id).await.unwrap();
    assert_eq!(got, created);

    // The status is output only: a new task is open whatever the request says.
    for status in ["in_progress", "completed", "cancelled", "done"] {
        let urgent = app
            .create(
                &app.agent,
                pb::Task {
                    title: "Send the brochure".into(),
                    priority: "urgent".into(),
                    status: status.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (urgent.status.as_str(), urgent.priority.as_str()),
            ("open", "urgent")
        );
    }
}

#[tokio::test]
async fn every_bad_field_of_a_task_is_named() {
    let app = TestApp::spawn().await;
    assert_invalid(
        app.create(
            &app.agent,
            pb::Task {
                title: " ".into(),
                priority: "someday".into(),
                taskable_type: "invoice".into(),
                taskable_id: 5,
                assignee_user_id: -1,
                due_time: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
                ..Default::default()
            },
        )
        .await,
        &[
            "task.assignee_user_id",
            "task.due_time",
            "task.priority",
            "task.taskable_type",
            "task.title",
        ],
    );
    // Sizes are bounded before the fields are read (fusion_service::bounds): a field
    // over its size is named on its own, ahead of any other rule.
    assert_invalid(
        app.create(
            &app.agent,
            pb::Task {
                title: " ".into(),
                description: "x".repeat(20_001),
                ..Default::default()
            },
        )
        .await,
        &["task.description"],
    );

    for (task, field) in [
        (
            pb::Task {
                taskable_id: 7,
                ..Default::default()
            },
            "task.taskable_type",
        ),
        (
            pb::Task {
                taskable_type: "lead".into(),
                ..Default::default()
            },
            "task.taskable_id",
        ),
    ] {
        assert_invalid(
            app.create(
                &app.agent,
                pb::Task {
                    title: "A".into(),
                    ..task
                },
            )
            .await,
            &[field],
        );
    }
}

#[tokio::test]
async fn a_task_is_assigned_only_to_an_active_user_of_its_tenant_by_whoever_assigns_it() {
    let app = TestApp::spawn().await;
    let assigned = app
        .create(
            &app.acme,
            pb::Task {
                title: "Follow up".into(),
                assignee_user_id: app.agent.user_id,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (assigned.assignee_user_id, assigned.assigner_user_id),
        (app.agent.user_id, app.acme.user_id)
    );
    // Globex's admin is a user, but not of this tenant: identity says NOT_FOUND.
    for stranger in [app.globex.user_id, 999_999] {
        assert_invalid(
            app.create(
                &app.acme,
                pb::Task {
                    title: "Stray".into(),
                    assignee_user_id: stranger,
                    ..Default::default()
                },
            )
            .await,
            &["task.assignee_user_id"],
        );
        assert_invalid(
            app.update(
                &app.acme,
                pb::Task {
                    id: assigned.id,
                    assignee_user_id: stranger,
                    ..Default::default()
                },
                &["assignee_user_id"],
            )
            .await,
            &["task.assignee_user_id"],
        );
    }

    // Reassigning makes the caller the assigner; other changes leave it alone.
    let reassigned = app
        .update(
            &app.agent,
            pb::Task {
                id: assigned.id,
                assignee_user_id: app.acme.user_id,
                ..Default::default()
            },
            &["assignee_user_id"],
        )
        .await
        .unwrap();
    assert_eq!(
        (reassigned.assignee_user_id, reassigned.assigner_user_id),
        (app.acme.user_id, app.agent.user_id)
    );
    let renamed = app
        .update(
            &app.acme,
            pb::Task {
                id: assigned.id,
                title: "Follow up twice".into(),
                ..Default::default()
            },
            &["title"],
        )
        .await
        .unwrap();
    assert_eq!(renamed.assigner_user_id, app.agent.user_id);
    let unassigned = app
        .update(
            &app.acme,
            pb::Task {
                id: assigned.id,
                ..Default::default()
            },
            &["assignee_user_id"],
        )
        .await
        .unwrap();
    assert_eq!(
        (unassigned.assignee_user_id, unassigned.assigner_user_id),
        (0, app.acme.user_id)
    );
}

#[tokio::test]
async fn completing_sets_the_complete_time_and_reopening_clears_it() {
    let app = TestApp::spawn().await;
    let task = task(
        &app,
        &app.agent,
        "Late",
        pb::Task {
            due_time: from_now(-3600),
            ..Default::default()
        },
    )
    .await;
    let task = Start
        .send(&app, &app.agent, task.id, &task.etag)
        .await
        .unwrap();
    assert_eq!(task.status, "in_progress");
    assert!(task.overdue);

    let before = chrono::Utc::now().timestamp();
    let done = Complete
        .send(&app, &app.agent, task.id, &task.etag)
        .await
        .unwrap();
    assert_eq!(done.status, "completed");
    let at = done.complete_time.expect("a completion time");
    assert!(at.seconds >= before && at.seconds <= chrono::Utc::now().timestamp());
    assert!(!done.overdue, "a completed task is not overdue");
    assert_ne!(done.etag, task.etag);

    // Completing it again returns it unchanged; a stale etag is refused.
    assert_eq!(
        Complete.send(&app, &app.agent, done.id, "").await.unwrap(),
        done
    );
    expect_code(
        Reopen.send(&app, &app.agent, task.id, &task.etag).await,
        Code::Aborted,
    );

    let reopened = Reopen
        .send(&app, &app.agent, task.id, &done.etag)
        .await
        .unwrap();
    assert_eq!(
        (reopened.status.as_str(), reopened.complete_time),
        ("open", None)
    );
    assert!(reopened.overdue);
    // Reopening an open task returns it unchanged.
    assert_eq!(
        Reopen.send(&app, &app.agent, task.id, "").await.unwrap(),
        reopened
    );
    expect_code(
        Complete.send(&app, &app.agent, task.id, &done.etag).await,
        Code::Aborted,
    );
}

#[tokio::test]
async fn each_status_method_accepts_only_the_states_it_names() {
    let app = TestApp::spawn().await;
    let who = &app.agent;
    let t = task(&app, who, "Dropped", pb::Task::default()).await;
    assert_eq!(t.status, "open");
    let refused = |result: Result<pb::Task, tonic::Status>, reason: &str| {
        let status = expect_code(result, Code::FailedPrecondition);
        assert_eq!(fusion_testkit::reason(&status), reason, "{status:?}");
        assert!(status.message().contains("ReopenTask"), "{status:?}");
    };

    // open → in_progress; starting again returns it unchanged.
    let started = Start.send(&app, who, t.id, &t.etag).await.unwrap();
    assert_eq!(
        (started.status.as_str(), started.complete_time),
        ("in_progress", None)
    );
    assert_eq!(Start.send(&app, who, t.id, "").await.unwrap(), started);
    // in_progress → cancelled; cancelling again returns it unchanged.
    let cancelled = Cancel.send(&app, who, t.id, &started.etag).await.unwrap();
    assert_eq!(cancelled.status, "cancelled");
    assert_eq!(Cancel.send(&app, who, t.id, "").await.unwrap(), cancelled);
    // A cancelled task is neither started nor completed until it is reopened.
    refused(Start.send(&app, who, t.id, "").await, "TASK_CANCELLED");
    refused(Complete.send(&app, who, t.id, "").await, "TASK_CANCELLED");
    let reopened = Reopen.send(&app, who, t.id, "").await.unwrap();
    assert_eq!(reopened.status, "open");
    // open → completed; a completed task is neither started nor cancelled.
    let done = Complete
        .send(&app, who, t.id, &reopened.etag)
        .await
        .unwrap();
    assert_eq!(done.status, "completed");
    refused(Start.send(&app, who, t.id, "").await, "TASK_COMPLETED");
    refused(Cancel.send(&app, who, t.id, "").await, "TASK_COMPLETED");
    assert_eq!(
        app.get::<pb::Task>(who, t.id).await.unwrap(),
        done,
        "refused changes changed nothing"
    );
    // open → cancelled directly; a stale etag is refused.
    let reopened = Reopen.send(&app, who, t.id, "").await.unwrap();
    expect_code(
        Cancel.send(&app, who, t.id, &done.etag).await,
        Code::Aborted,
    );
    let cancelled = Cancel.send(&app, who, t.id, &reopened.etag).await.unwrap();
    assert_eq!(
        (cancelled.status.as_str(), cancelled.complete_time),
        ("cancelled", None)
    );
    expect_code(
        Start.send(&app, who, t.id, &reopened.etag).await,
        Code::Aborted,
    );
}

#[tokio::test]
async fn updates_change_masked_fields_but_never_the_subject_or_the_completion() {
    let app = TestApp::spawn().await;
    let lead = app.lead(&app.agent, "Nguyen").await;
    let task = task(
        &app,
        &app.agent,
        "Call",
        pb::Task {
            taskable_type: "lead".into(),
            taskable_id: lead.id,
            ..Default::default()
        },
    )
    .await;
    let due = from_now(7200);
    let changed = app
        .update(
            &app.agent,
            pb::Task {
                id: task.id,
                title: "Call about finance".into(),
                priority: "high".into(),
                due_time: due,
                description: "not in the mask".into(),
                etag: task.etag.clone(),
                ..Default::default()
            },
            &["title", "priority", "due_time"],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            changed.title.as_str(),
            changed.priority.as_str(),
            changed.description.as_str()
        ),
        ("Call about finance", "high", "")
    );
    assert_eq!(changed.due_time, due);
    assert_ne!(changed.etag, task.etag);
    expect_code(
        app.update(
            &app.agent,
            pb::Task {
                id: task.id,
                title: "Stale".into(),
                etag: task.etag.clone(),
                ..Default::default()
            },
            &["title"],
        )
        .await,
        Code::Aborted,
    );
    for path in [
        "taskable_type",
        "taskable_id",
        "assigner_user_id",
        "status",
        "complete_time",
    ] {
        let status = expect_code(
            app.update(
                &app.agent,
                pb::Task {
                    id: task.id,
                    ..Default::default()
                },
                &[path],
            )
            .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["update_mask"], "{path}");
    }
    for (change, field) in [
        (pb::Task::default(), "priority"),
        (pb::Task::default(), "title"),
    ] {
        let status = expect_code(
            app.update(
                &app.agent,
                pb::Task {
                    id: task.id,
                    ..change
                },
                &[field],
            )
            .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), [format!("task.{field}")]);
    }

    // The status is output only: an update carrying one, without a mask or with `*`,
    // leaves it as it is, and the other fields change as usual, also when the whole
    // task is sent back as it was read.
    let done = Complete.send(&app, &app.agent, task.id, "").await.unwrap();
    let unmasked = app
        .update(
            &app.agent,
            pb::Task {
                id: task.id,
                title: "Calling".into(),
                status: "open".into(),
                ..Default::default()
            },
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (unmasked.title.as_str(), unmasked.status.as_str()),
        ("Calling", "completed")
    );
    let retitled = app
        .update(
            &app.agent,
            pb::Task {
                title: "Called".into(),
                status: "open".into(),
                ..unmasked.clone()
            },
            &["*"],
        )
        .await
        .unwrap();
    assert_eq!(
        (retitled.title.as_str(), retitled.status.as_str()),
        ("Called", "completed")
    );
    assert_eq!(retitled.complete_time, done.complete_time);
    assert_eq!(
        (retitled.taskable_type.as_str(), retitled.taskable_id),
        ("lead", lead.id)
    );
}

#[tokio::test]
async fn overdue_only_lists_open_and_in_progress_tasks_past_due() {
    let app = TestApp::spawn().await;
    let agent = &app.agent;
    let late = |hours: i64| pb::Task {
        due_time: from_now(-3600 * hours),
        ..Default::default()
    };
    task(&app, agent, "late open", late(3)).await;
    let started = task(&app, agent, "late in progress", late(2)).await;
    Start.send(&app, agent, started.id, "").await.unwrap();
    let dropped = task(&app, agent, "late cancelled", late(2)).await;
    Cancel.send(&app, agent, dropped.id, "").await.unwrap();
    let done = task(&app, agent, "late done", late(1)).await;
    Complete.send(&app, agent, done.id, "").await.unwrap();
    task(
        &app,
        agent,
        "later",
        pb::Task {
            due_time: from_now(3600),
            ..Default::default()
        },
    )
    .await;
    task(&app, agent, "undated", pb::Task::default()).await;

    let overdue = |filter: &str, page_size: i32, page_token: &str| pb::ListTasksRequest {
        overdue_only: true,
        filter: filter.into(),
        page_size,
        page_token: page_token.into(),
        ..Default::default()
    };
    let all = app.send(agent, overdue("", 0, "")).await.unwrap();
    assert_eq!(titles(&all), ["late open", "late in progress"]);
    assert!(all.tasks.iter().all(|t| t.overdue));
    let everything = app
        .send(agent, pb::ListTasksRequest::default())
        .await
        .unwrap();
    assert_eq!(everything.total_size, 6);
    assert_eq!(everything.tasks.iter().filter(|t| t.overdue).count(), 2);
    let filtered = app
        .send(agent, overdue(r#"status = "in_progress""#, 0, ""))
        .await
        .unwrap();
    assert_eq!(titles(&filtered), ["late in progress"]);

    // Pages of an overdue list carry the time of the first page with them.
    let first = app.send(agent, overdue("", 1, "")).await.unwrap();
    assert_eq!((titles(&first), first.total_size), (vec!["late open"], 2));
    let second = app
        .send(agent, overdue("", 1, &first.next_page_token))
        .await
        .unwrap();
    assert_eq!(titles(&second), ["late in progress"]);
    assert!(second.next_page_token.is_empty());
    // The token is refused without overdue_only, and with an edited time.
    let status = expect_code(
        app.send(
            agent,
            pb::ListTasksRequest {
                page_size: 1,
                page_token: first.next_page_token.clone(),
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["page_token"]);
    let (micros, rest) = first.next_page_token.split_once('~').unwrap();
    let edited = format!("{}~{rest}", micros.parse::<i64>().unwrap() + 1);
    assert_invalid(
        app.send(agent, overdue("", 1, &edited)).await,
        &["page_token"],
    );
    assert_invalid(
        app.send(agent, overdue("due_time <", 0, "")).await,
        &["filter"],
    );
}

#[tokio::test]
async fn an_overdue_list_keeps_the_time_of_its_first_page() {
    let app = TestApp::spawn().await;
    let agent = &app.agent;
    for (title, seconds) in [("first", -7200), ("second", -3600), ("imminent", 2)] {
        task(
            &app,
            agent,
            title,
            pb::Task {
                due_time: from_now(seconds),
                ..Default::default()
            },
        )
        .await;
    }
    let overdue = |page_token: String| pb::ListTasksRequest {
        overdue_only: true,
        page_size: 1,
        page_token,
        ..Default::default()
    };
    let first = app.send(agent, overdue(String::new())).await.unwrap();
    assert_eq!((titles(&first), first.total_size), (vec!["first"], 2));
    tokio::time::sleep(Duration::from_secs(3)).await;
    // "imminent" is overdue by now, but not at the time the list was started.
    let second = app
        .send(agent, overdue(first.next_page_token))
        .await
        .unwrap();
    assert_eq!((titles(&second), second.total_size), (vec!["second"], 2));
    assert!(second.next_page_token.is_empty());
    let fresh = app.send(agent, overdue(String::new())).await.unwrap();
    assert_eq!(fresh.total_size, 3);
}

#[tokio::test]
async fn assigned_to_me_lists_the_callers_tasks_and_its_tokens_are_the_callers() {
    let app = TestApp::spawn().await;
    for (title, to) in [
        ("agent 1", app.agent.user_id),
        ("admin", app.acme.user_id),
        ("agent 2", app.agent.user_id),
        ("nobody", 0),
    ] {
        task(
            &app,
            &app.acme,
            title,
            pb::Task {
                assignee_user_id: to,
                ..Default::default()
            },
        )
        .await;
    }
    let mine = |page_size: i32, page_token: String| pb::ListTasksRequest {
        assigned_to_me: true,
        order_by: "title".into(),
        page_size,
        page_token,
        ..Default::default()
    };
    let agents = app.send(&app.agent, mine(0, String::new())).await.unwrap();
    assert_eq!(titles(&agents), ["agent 1", "agent 2"]);
    let admins = app.send(&app.acme, mine(0, String::new())).await.unwrap();
    assert_eq!(titles(&admins), ["admin"]);
    let viewers = app.send(&app.viewer, mine(0, String::new())).await.unwrap();
    assert_eq!(viewers.total_size, 0);

    let first = app.send(&app.agent, mine(1, String::new())).await.unwrap();
    let second = app
        .send(&app.agent, mine(1, first.next_page_token.clone()))
        .await
        .unwrap();
    assert_eq!(titles(&second), ["agent 2"]);
    // "Me" is bound into the token: another user cannot page on with it.
    assert_invalid(
        app.send(&app.acme, mine(1, first.next_page_token)).await,
        &["page_token"],
    );
}

#[tokio::test]
async fn a_list_about_one_record_pages_within_it_and_its_tokens_stay_bound_to_it() {
    let app = TestApp::spawn().await;
    let ours = app.lead(&app.agent, "Ours").await;
    let other = app.lead(&app.agent, "Other").await;
    let lot = app.lot(&app.acme, "riverside").await;
    for (title, kind, id) in [
        ("ours 1", "lead", ours.id),
        ("ours 2", "lead", ours.id),
        ("ours 3", "lead", ours.id),
        ("other", "lead", other.id),
        ("lot", "lot", lot),
        ("none", "", 0),
    ] {
        task(
            &app,
            &app.agent,
            title,
            pb::Task {
                taskable_type: kind.into(),
                taskable_id: id,
                ..Default::default()
            },
        )
        .await;
    }
    let about = |kind: &str, id: i64, page_token: String| pb::ListTasksRequest {
        taskable_type: kind.into(),
        taskable_id: id,
        order_by: "title".into(),
        page_size: 2,
        page_token,
        ..Default::default()
    };
    let first = app
        .send(&app.viewer, about("lead", ours.id, String::new()))
        .await
        .unwrap();
    assert_eq!(
        (titles(&first), first.total_size),
        (vec!["ours 1", "ours 2"], 3)
    );
    let second = app
        .send(
            &app.viewer,
            about("lead", ours.id, first.next_page_token.clone()),
        )
        .await
        .unwrap();
    assert_eq!(titles(&second), ["ours 3"]);
    for (kind, id) in [("lead", other.id), ("lead", 0), ("", 0)] {
        assert_invalid(
            app.send(&app.viewer, about(kind, id, first.next_page_token.clone()))
                .await,
            &["page_token"],
        );
    }

    let leads = app
        .send(&app.viewer, about("lead", 0, String::new()))
        .await
        .unwrap();
    assert_eq!(leads.total_size, 4);
    let lots = app
        .send(&app.viewer, about("lot", lot, String::new()))
        .await
        .unwrap();
    assert_eq!(titles(&lots), ["lot"]);
    for (kind, id, field) in [
        ("", ours.id, "taskable_type"),
        ("invoice", 0, "taskable_type"),
        ("lead", -1, "taskable_id"),
    ] {
        assert_invalid(
            app.send(&app.viewer, about(kind, id, String::new())).await,
            &[field],
        );
    }
}

#[tokio::test]
async fn tasks_come_by_due_time_then_priority_rank_with_undated_tasks_last() {
    let app = TestApp::spawn().await;
    let soon = from_now(3600);
    for (title, due, priority) in [
        ("low soon", soon, "low"),
        ("urgent soon", soon, "urgent"),
        ("normal later", from_now(7200), "normal"),
        ("undated high", None, "high"),
        ("undated low", None, "low"),
    ] {
        task(
            &app,
            &app.agent,
            title,
            pb::Task {
                due_time: due,
                priority: priority.into(),
                ..Default::default()
            },
        )
        .await;
    }
    let ordered =
        |filter: &str, order_by: &str, page_size: i32, page_token: String| pb::ListTasksRequest {
            filter: filter.into(),
            order_by: order_by.into(),
            page_size,
            page_token,
            ..Default::default()
        };
    let default = app
        .send(&app.viewer, ordered("", "", 0, String::new()))
        .await
        .unwrap();
    assert_eq!(
        titles(&default),
        [
            "urgent soon",
            "low soon",
            "normal later",
            "undated high",
            "undated low"
        ]
    );
    let by_rank = app
        .send(
            &app.viewer,
            ordered("", "priority desc, title", 0, String::new()),
        )
        .await
        .unwrap();
    assert_eq!(
        titles(&by_rank),
        [
            "urgent soon",
            "undated high",
            "normal later",
            "low soon",
            "undated low"
        ]
    );
    // Keyset pages walk the ranks too.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .send(&app.viewer, ordered("", "priority, title", 2, token))
            .await
            .unwrap();
        seen.extend(page.tasks.into_iter().map(|t| t.title));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            "low soon",
            "undated low",
            "normal later",
            "undated high",
            "urgent soon"
        ]
    );

    let high = app
        .send(
            &app.viewer,
            ordered(
                r#"priority = "high" OR priority = "urgent""#,
                "title",
                0,
                String::new(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(titles(&high), ["undated high", "urgent soon"]);
    let due_soon = app
        .send(
            &app.viewer,
            ordered(
                &format!(
                    r#"due_time < "{}""#,
                    (chrono::Utc::now() + chrono::Duration::minutes(90)).to_rfc3339()
                ),
                "title",
                0,
                String::new(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(titles(&due_soon), ["low soon", "urgent soon"]);
    // The rank is how priorities sort, not a field of its own.
    for (filter, order_by, field) in [
        ("priority_rank = 2", "", "filter"),
        ("", "priority_rank", "order_by"),
        ("password = \"x\"", "", "filter"),
        ("", "description", "order_by"),
    ] {
        assert_invalid(
            app.send(&app.viewer, ordered(filter, order_by, 0, String::new()))
                .await,
            &[field],
        );
    }
}

/// Complete and Reopen are the task's own methods: the conformance suite covers the
/// standard ones.
#[tokio::test]
async fn completing_and_reopening_are_bound_to_the_tenant_and_need_the_write_permission() {
    let app = TestApp::spawn().await;
    let t = task(&app, &app.agent, "Call back", pb::Task::default()).await;
    let deleted = task(&app, &app.agent, "Deleted", pb::Task::default()).await;
    app.delete::<pb::Task>(&app.agent, deleted.id, "")
        .await
        .unwrap();
    for (who, id, code) in [
        (&app.globex, t.id, Code::NotFound),
        (&app.viewer, t.id, Code::PermissionDenied),
        (&app.agent, deleted.id, Code::NotFound),
    ] {
        expect_code(Complete.send(&app, who, id, "").await, code);
        expect_code(Reopen.send(&app, who, id, "").await, code);
    }
}
