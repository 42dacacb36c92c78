//! Commission plans and commissions over gRPC: plans validated line by line and named by
//! field path, one live plan per project and one default, the status machine of a
//! commission and its refusals, the totals of SummarizeCommissions, and the whole flow
//! through a real private NATS JetStream — crm wins a deal, finance creates its plan's
//! commissions exactly once, property's sale of the lot makes them payable, and
//! reopening the deal cancels the unpaid ones and claws back the paid one.

use std::time::{Duration, Instant};

use tonic::{Code, Status};

use fusion_proto::crm::v1 as crmpb;
use fusion_proto::crm::v1::deal_service_client::DealServiceClient;
use fusion_proto::finance::v1 as pb;
use fusion_proto::google::r#type::Date;
use fusion_proto::identity::v1 as idpb;
use fusion_proto::identity::v1::tenant_service_client::TenantServiceClient;
use fusion_proto::property::v1 as proppb;
use fusion_proto::property::v1::lot_service_client::LotServiceClient;
use fusion_testkit::PrivateNats;

use crate::helpers::{TestApp, User, assert_invalid, expect_code, mask, reason};

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A plan line of `commission_type` worth `rate` % or `fixed` (one of them empty),
/// split between `recipients` (user, share) and paid over `milestones` (name, percent).
fn line(
    commission_type: &str,
    rate: &str,
    fixed: &str,
    recipients: &[(i64, &str)],
    milestones: &[(&str, &str)],
) -> pb::CommissionPlanLine {
    pb::CommissionPlanLine {
        commission_type: commission_type.into(),
        rate: rate.into(),
        fixed_amount: fixed.into(),
        recipients: recipients
            .iter()
            .map(|(user_id, share)| pb::CommissionRecipient {
                user_id: *user_id,
                share: (*share).into(),
            })
            .collect(),
        milestones: milestones
            .iter()
            .map(|(milestone, percent)| pb::CommissionMilestone {
                milestone: (*milestone).into(),
                percent: (*percent).into(),
            })
            .collect(),
    }
}

/// A plan named `name` for project `project` (0: the default plan).
fn plan(name: &str, project: i64, lines: Vec<pb::CommissionPlanLine>) -> pb::CommissionPlan {
    pb::CommissionPlan {
        name: name.into(),
        project_id: project,
        lines,
        ..Default::default()
    }
}

async fn create_plan(
    app: &TestApp,
    who: &User,
    p: pb::CommissionPlan,
) -> Result<pb::CommissionPlan, Status> {
    app.plans()
        .create_commission_plan(who.req(pb::CreateCommissionPlanRequest {
            commission_plan: Some(p),
            request_id: String::new(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

/// A commission by hand for `deal` to `recipient` of `amount`.
fn manual(deal: i64, recipient: i64, amount: &str) -> pb::Commission {
    pb::Commission {
        deal_id: deal,
        recipient_user_id: recipient,
        amount: amount.into(),
        ..Default::default()
    }
}

async fn create(app: &TestApp, who: &User, c: pb::Commission) -> Result<pb::Commission, Status> {
    app.commissions()
        .create_commission(who.req(pb::CreateCommissionRequest {
            commission: Some(c),
            request_id: String::new(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn approve(app: &TestApp, id: i64, request_id: &str) -> Result<pb::Commission, Status> {
    app.commissions()
        .approve_commission(app.acme.req(pb::ApproveCommissionRequest {
            id,
            request_id: request_id.into(),
            ..Default::default()
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn pay(app: &TestApp, id: i64, date: Option<Date>) -> Result<pb::Commission, Status> {
    app.commissions()
        .mark_commission_paid(app.acme.req(pb::MarkCommissionPaidRequest {
            id,
            payment_date: date,
            ..Default::default()
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn update(
    app: &TestApp,
    c: pb::Commission,
    paths: &[&str],
) -> Result<pb::Commission, Status> {
    app.commissions()
        .update_commission(app.acme.req(pb::UpdateCommissionRequest {
            commission: Some(c),
            update_mask: mask(paths),
        }))
        .await
        .map(tonic::Response::into_inner)
}

/// Asserts `result` is FAILED_PRECONDITION COMMISSION_STATUS.
#[track_caller]
fn assert_status_refused<T: std::fmt::Debug>(result: Result<T, Status>) {
    let status = expect_code(result, Code::FailedPrecondition);
    assert_eq!(reason(&status), "COMMISSION_STATUS", "{status:?}");
}

fn date(year: i32, month: i32, day: i32) -> Date {
    Date { year, month, day }
}

fn today() -> Date {
    fusion_service::api::date_pb(chrono::Utc::now().date_naive())
}

#[tokio::test]
async fn plan_lines_are_validated_and_every_problem_named_by_its_path() {
    let app = TestApp::spawn().await;
    let (agent, officer) = (app.agent.user_id, app.finance_user.user_id);
    let won = [("won", "100")];
    let cases: Vec<(Vec<pb::CommissionPlanLine>, &[&str])> = vec![
        (
            vec![line(
                "sales_agent",
                "2",
                "",
                &[(agent, "70"), (officer, "20")],
                &won,
            )],
            &["commission_plan.lines[0].recipients"],
        ),
        (
            vec![line(
                "sales_agent",
                "2",
                "",
                &[(agent, "100")],
                &[("exchanged", "50"), ("settled", "40")],
            )],
            &["commission_plan.lines[0].milestones"],
        ),
        (
            vec![line("sales_agent", "2", "100.00", &[(agent, "100")], &won)],
            &["commission_plan.lines[0].fixed_amount"],
        ),
        (
            vec![line("agent", "2", "", &[(agent, "100")], &won)],
            &["commission_plan.lines[0].commission_type"],
        ),
        (
            vec![
                line("bdm", "", "100.00", &[(agent, "100")], &won),
                line(
                    "piab",
                    "0",
                    "",
                    &[(agent, "50"), (officer, "50.001")],
                    &[("reserved", "100")],
                ),
            ],
            &[
                "commission_plan.lines[1].rate",
                "commission_plan.lines[1].recipients[1].share",
                "commission_plan.lines[1].milestones[0].milestone",
            ],
        ),
        (Vec::new(), &["commission_plan.lines"]),
        (
            // Another tenant's user is no recipient here.
            vec![line(
                "sales_agent",
                "2",
                "",
                &[(agent, "50"), (app.globex.user_id, "50")],
                &won,
            )],
            &["commission_plan.lines[0].recipients[1].user_id"],
        ),
    ];
    for (lines, fields) in cases {
        assert_invalid(
            create_plan(&app, &app.acme, plan("Broken", 0, lines)).await,
            fields,
        );
    }
    let theirs = app.project(&app.globex, "theirs").await;
    assert_invalid(
        create_plan(
            &app,
            &app.acme,
            plan(
                "",
                theirs,
                vec![line("bdm", "", "1", &[(agent, "100")], &won)],
            ),
        )
        .await,
        &["commission_plan.name"],
    );
    assert_invalid(
        create_plan(
            &app,
            &app.acme,
            plan(
                "Theirs",
                theirs,
                vec![line("bdm", "", "1", &[(agent, "100")], &won)],
            ),
        )
        .await,
        &["commission_plan.project_id"],
    );

    // A valid plan comes back with its figures written one way.
    let created = create_plan(
        &app,
        &app.acme,
        plan(
            "Standard",
            0,
            vec![line(
                "sales_agent",
                "2",
                "",
                &[(agent, "70.00"), (officer, "30")],
                &[("exchanged", "50.0"), ("settled", "50")],
            )],
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        created.lines,
        [line(
            "sales_agent",
            "2.00",
            "",
            &[(agent, "70"), (officer, "30")],
            &[("exchanged", "50"), ("settled", "50")],
        )]
    );
    let got = app
        .plans()
        .get_commission_plan(
            app.acme
                .req(pb::GetCommissionPlanRequest { id: created.id }),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, created);
}

#[tokio::test]
async fn a_project_has_one_live_plan_and_the_tenant_one_default() {
    let app = TestApp::spawn().await;
    let agent = app.agent.user_id;
    let lines = || {
        vec![line(
            "sales_agent",
            "2",
            "",
            &[(agent, "100")],
            &[("won", "100")],
        )]
    };
    let default = create_plan(&app, &app.acme, plan("Default", 0, lines()))
        .await
        .unwrap();
    let second = create_plan(&app, &app.acme, plan("Second default", 0, lines())).await;
    let status = expect_code(second, Code::AlreadyExists);
    assert_eq!(reason(&status), "ALREADY_EXISTS");
    assert!(status.message().contains("project_id"), "{status:?}");

    let project = app.project(&app.acme, "one-plan").await;
    create_plan(&app, &app.acme, plan("Project", project, lines()))
        .await
        .unwrap();
    expect_code(
        create_plan(&app, &app.acme, plan("Project again", project, lines())).await,
        Code::AlreadyExists,
    );
    // Another tenant has its own default.
    create_plan(
        &app,
        &app.globex,
        plan(
            "Globex default",
            0,
            vec![line(
                "sales_agent",
                "2",
                "",
                &[(app.globex.user_id, "100")],
                &[("won", "100")],
            )],
        ),
    )
    .await
    .unwrap();

    // A deleted default makes room for another; it cannot come back while that lives.
    app.plans()
        .delete_commission_plan(app.acme.req(pb::DeleteCommissionPlanRequest {
            id: default.id,
            etag: String::new(),
        }))
        .await
        .unwrap();
    create_plan(&app, &app.acme, plan("New default", 0, lines()))
        .await
        .unwrap();
    let status = expect_code(
        app.plans()
            .undelete_commission_plan(
                app.acme
                    .req(pb::UndeleteCommissionPlanRequest { id: default.id }),
            )
            .await,
        Code::AlreadyExists,
    );
    assert!(status.message().contains("project_id"), "{status:?}");

    // The project is fixed; the lines are replaced whole.
    let moved = app
        .plans()
        .update_commission_plan(app.acme.req(pb::UpdateCommissionPlanRequest {
            commission_plan: Some(pb::CommissionPlan {
                id: default.id,
                project_id: project,
                ..Default::default()
            }),
            update_mask: mask(&["project_id"]),
        }))
        .await;
    assert_invalid(moved, &["update_mask"]);
}

#[tokio::test]
async fn a_plans_new_lines_replace_the_old_and_are_checked_like_new_ones() {
    let app = TestApp::spawn().await;
    let (agent, officer) = (app.agent.user_id, app.finance_user.user_id);
    let created = create_plan(
        &app,
        &app.acme,
        plan(
            "Standard",
            0,
            vec![line(
                "sales_agent",
                "2",
                "",
                &[(agent, "100")],
                &[("won", "100")],
            )],
        ),
    )
    .await
    .unwrap();
    let change = |lines| pb::UpdateCommissionPlanRequest {
        commission_plan: Some(pb::CommissionPlan {
            id: created.id,
            lines,
            ..Default::default()
        }),
        update_mask: mask(&["lines"]),
    };
    let updated = app
        .plans()
        .update_commission_plan(app.acme.req(change(vec![
            line("bdm", "", "250", &[(officer, "100")], &[("settled", "100")]),
            line(
                "referral_partner",
                "0.5",
                "",
                &[(agent, "100")],
                &[("won", "100")],
            ),
        ])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        updated.lines,
        [
            line(
                "bdm",
                "",
                "250.00",
                &[(officer, "100")],
                &[("settled", "100")]
            ),
            line(
                "referral_partner",
                "0.50",
                "",
                &[(agent, "100")],
                &[("won", "100")]
            ),
        ]
    );
    assert_ne!(updated.etag, created.etag);
    assert_invalid(
        app.plans()
            .update_commission_plan(app.acme.req(change(vec![line(
                "bdm",
                "",
                "250",
                &[(app.globex.user_id, "100")],
                &[("settled", "100")],
            )])))
            .await,
        &["commission_plan.lines[0].recipients[0].user_id"],
    );
}

#[tokio::test]
async fn a_manual_commission_walks_the_status_machine_and_steps_out_of_turn_are_refused() {
    let app = TestApp::spawn().await;
    let deal = app.deal(&app.acme, "Manual").await;
    let c = create(
        &app,
        &app.finance_user,
        manual(deal, app.agent.user_id, "1000.00"),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            c.status.as_str(),
            c.kind.as_str(),
            c.milestone.as_str(),
            c.commission_type.as_str(),
            c.currency_code.as_str(),
            c.amount.as_str(),
            c.plan_id,
        ),
        (
            "payable",
            "manual",
            "won",
            "sales_agent",
            "AUD",
            "1000.00",
            0
        )
    );
    assert!(c.payable_time.is_some() && c.payment_date.is_none());

    // Paid only once approved.
    assert_status_refused(pay(&app, c.id, None).await);
    // A manual commission not yet approved may change its amount.
    let c = update(
        &app,
        pb::Commission {
            id: c.id,
            amount: "1200.50".into(),
            ..Default::default()
        },
        &["amount"],
    )
    .await
    .unwrap();
    assert_eq!(c.amount, "1200.50");

    // Approved once: a retry answers the same, a second approval is refused.
    let request_id = new_id();
    let approved = approve(&app, c.id, &request_id).await.unwrap();
    assert_eq!(approved.status, "approved");
    assert_eq!(approve(&app, c.id, &request_id).await.unwrap(), approved);
    assert_status_refused(approve(&app, c.id, &new_id()).await);

    // Approved: the amount is fixed and it cannot be deleted; the description can change.
    assert_status_refused(
        update(
            &app,
            pb::Commission {
                id: c.id,
                amount: "1.00".into(),
                ..Default::default()
            },
            &["amount"],
        )
        .await,
    );
    let described = update(
        &app,
        pb::Commission {
            id: c.id,
            description: "Agreed bonus".into(),
            ..Default::default()
        },
        &["description"],
    )
    .await
    .unwrap();
    assert_eq!(described.description, "Agreed bonus");
    assert_status_refused(
        app.commissions()
            .delete_commission(app.acme.req(pb::DeleteCommissionRequest {
                id: c.id,
                etag: String::new(),
            }))
            .await,
    );

    // Paid on the date given, or today in the tenant's zone (acme's is UTC).
    let before = today();
    let paid = pay(&app, c.id, None).await.unwrap();
    assert_eq!(paid.status, "paid");
    let paid_on = paid.payment_date.unwrap();
    assert!(paid_on == before || paid_on == today(), "{paid_on:?}");
    assert_status_refused(pay(&app, c.id, None).await);
    assert_status_refused(approve(&app, c.id, &new_id()).await);

    let other = create(&app, &app.acme, manual(deal, app.acme.user_id, "10.00"))
        .await
        .unwrap();
    approve(&app, other.id, "").await.unwrap();
    assert_invalid(
        pay(&app, other.id, Some(date(2026, 2, 30))).await,
        &["payment_date"],
    );
    let paid = pay(&app, other.id, Some(date(2026, 3, 31))).await.unwrap();
    assert_eq!(paid.payment_date, Some(date(2026, 3, 31)));

    // A payable one may be deleted and restored.
    let third = create(&app, &app.acme, manual(deal, app.acme.user_id, "5.00"))
        .await
        .unwrap();
    let deleted = app
        .commissions()
        .delete_commission(app.acme.req(pb::DeleteCommissionRequest {
            id: third.id,
            etag: third.etag.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.delete_time.is_some());
}

#[tokio::test]
async fn a_manual_commissions_deal_recipient_invoice_and_amount_are_checked() {
    let app = TestApp::spawn().await;
    let deal = app.deal(&app.acme, "Checked").await;
    let theirs = app.deal(&app.globex, "Theirs").await;
    let agent = app.agent.user_id;
    let cases: Vec<(pb::Commission, &[&str])> = vec![
        (manual(theirs, agent, "10.00"), &["commission.deal_id"]),
        (
            manual(deal, app.globex.user_id, "10.00"),
            &["commission.recipient_user_id"],
        ),
        (
            manual(0, 0, "0.00"),
            &[
                "commission.deal_id",
                "commission.recipient_user_id",
                "commission.amount",
            ],
        ),
        (manual(deal, agent, "10.005"), &["commission.amount"]),
        (
            pb::Commission {
                currency_code: "JPY".into(),
                ..manual(deal, agent, "10.50")
            },
            &["commission.amount"],
        ),
        (
            pb::Commission {
                commission_type: "agent".into(),
                ..manual(deal, agent, "10.00")
            },
            &["commission.commission_type"],
        ),
    ];
    for (c, fields) in cases {
        assert_invalid(create(&app, &app.acme, c).await, fields);
    }
    let their_invoice = app.invoice(&app.globex, &[("1", "10.00", "0")]).await;
    assert_invalid(
        create(
            &app,
            &app.acme,
            pb::Commission {
                invoice_id: their_invoice.id,
                ..manual(deal, agent, "10.00")
            },
        )
        .await,
        &["commission.invoice_id"],
    );
    let ours = app.invoice(&app.acme, &[("1", "10.00", "0")]).await;
    let c = create(
        &app,
        &app.acme,
        pb::Commission {
            commission_type: "bdm".into(),
            currency_code: "NZD".into(),
            ..manual(deal, agent, "10.00")
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (c.commission_type.as_str(), c.currency_code.as_str()),
        ("bdm", "NZD")
    );
    let linked = update(
        &app,
        pb::Commission {
            id: c.id,
            invoice_id: ours.id,
            ..Default::default()
        },
        &["invoice_id"],
    )
    .await
    .unwrap();
    assert_eq!(linked.invoice_id, ours.id);
    assert_invalid(
        update(
            &app,
            pb::Commission {
                id: c.id,
                invoice_id: their_invoice.id,
                ..Default::default()
            },
            &["invoice_id"],
        )
        .await,
        &["commission.invoice_id"],
    );
    // The deal, recipient, currency and type are fixed.
    assert_invalid(
        update(
            &app,
            pb::Commission {
                id: c.id,
                deal_id: deal,
                ..Default::default()
            },
            &["deal_id"],
        )
        .await,
        &["update_mask"],
    );
}

#[tokio::test]
async fn summaries_total_by_recipient_type_status_and_currency_over_the_tenants_dates() {
    let app = TestApp::spawn().await;
    let deal = app.deal(&app.acme, "Summarized").await;
    let (agent, officer) = (app.agent.user_id, app.finance_user.user_id);
    let made = [
        (agent, "sales_agent", "AUD", "100.10"),
        (agent, "sales_agent", "AUD", "200.20"),
        (agent, "bdm", "AUD", "50.00"),
        (agent, "sales_agent", "NZD", "70.00"),
        (officer, "sales_agent", "AUD", "0.01"),
    ];
    let mut ids = Vec::new();
    for (user, kind, currency, amount) in made {
        let c = create(
            &app,
            &app.acme,
            pb::Commission {
                commission_type: kind.into(),
                currency_code: currency.into(),
                ..manual(deal, user, amount)
            },
        )
        .await
        .unwrap();
        ids.push(c.id);
    }
    approve(&app, ids[1], "").await.unwrap();
    // A deleted commission is not counted; another tenant's neither.
    let gone = create(&app, &app.acme, manual(deal, agent, "999.00"))
        .await
        .unwrap();
    app.commissions()
        .delete_commission(app.acme.req(pb::DeleteCommissionRequest {
            id: gone.id,
            etag: String::new(),
        }))
        .await
        .unwrap();
    let theirs = app.deal(&app.globex, "Theirs").await;
    create(
        &app,
        &app.globex,
        manual(theirs, app.globex.user_id, "5.00"),
    )
    .await
    .unwrap();

    let summarize = |start: Date, end: Date, recipient: i64| {
        let mut client = app.commissions();
        let req = app.acme.req(pb::SummarizeCommissionsRequest {
            start_date: Some(start),
            end_date: Some(end),
            recipient_user_id: recipient,
        });
        async move {
            client
                .summarize_commissions(req)
                .await
                .map(|r| r.into_inner().totals)
        }
    };
    let rows =
        |totals: Vec<pb::CommissionTotal>| -> Vec<(i64, String, String, String, String, i32)> {
            totals
                .into_iter()
                .map(|t| {
                    (
                        t.recipient_user_id,
                        t.commission_type,
                        t.status,
                        t.currency_code,
                        t.amount,
                        t.commission_count,
                    )
                })
                .collect()
        };
    let row = |user: i64, kind: &str, status: &str, currency: &str, amount: &str, count: i32| {
        (
            user,
            kind.to_owned(),
            status.to_owned(),
            currency.to_owned(),
            amount.to_owned(),
            count,
        )
    };
    let day = today();
    let all = rows(summarize(day, day, 0).await.unwrap());
    let mut expected = vec![
        row(agent, "bdm", "payable", "AUD", "50.00", 1),
        row(agent, "sales_agent", "approved", "AUD", "200.20", 1),
        row(agent, "sales_agent", "payable", "AUD", "100.10", 1),
        row(agent, "sales_agent", "payable", "NZD", "70.00", 1),
        row(officer, "sales_agent", "payable", "AUD", "0.01", 1),
    ];
    expected.sort();
    assert_eq!(all, expected);
    assert_eq!(
        rows(summarize(day, day, officer).await.unwrap()),
        [row(officer, "sales_agent", "payable", "AUD", "0.01", 1)]
    );
    approve(&app, ids[0], "").await.unwrap();
    let agent_only = rows(summarize(day, day, agent).await.unwrap());
    assert!(agent_only.contains(&row(agent, "sales_agent", "approved", "AUD", "300.30", 2)));

    // Nothing was created in another year; bad ranges are refused by field.
    assert!(
        summarize(date(2020, 1, 1), date(2020, 12, 31), 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_invalid(
        summarize(date(2026, 2, 1), date(2026, 1, 31), 0).await,
        &["end_date"],
    );
    assert_invalid(
        summarize(date(2020, 1, 1), date(2031, 1, 1), 0).await,
        &["end_date"],
    );
    assert_invalid(
        summarize(date(0, 0, 0), date(2026, 13, 1), 0).await,
        &["start_date", "end_date"],
    );
    assert_invalid(summarize(day, day, -1).await, &["recipient_user_id"]);
}

/// Polls deal `deal`'s commissions (deleted ones too), oldest first, until `done`
/// holds of them; panics after 30 s naming `what`.
async fn commissions_of(
    app: &TestApp,
    deal: i64,
    what: &str,
    done: impl Fn(&[pb::Commission]) -> bool,
) -> Vec<pb::Commission> {
    let started = Instant::now();
    loop {
        let listed = app
            .commissions()
            .list_commissions(app.acme.req(pb::ListCommissionsRequest {
                filter: format!("deal_id = {deal}"),
                order_by: "create_time".into(),
                show_deleted: true,
                page_size: 100,
                ..Default::default()
            }))
            .await
            .expect("commissions listed")
            .into_inner()
            .commissions;
        if done(&listed) {
            return listed;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} within 30 s; deal {deal} has {listed:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `(recipient, milestone, amount, status)` of each commission.
fn parts(commissions: &[pb::Commission]) -> Vec<(i64, &str, &str, &str)> {
    commissions
        .iter()
        .map(|c| {
            (
                c.recipient_user_id,
                c.milestone.as_str(),
                c.amount.as_str(),
                c.status.as_str(),
            )
        })
        .collect()
}

async fn win(app: &TestApp, deal: i64, request_id: &str) -> crmpb::Deal {
    DealServiceClient::new(app.peers.crm.clone())
        .win_deal(app.acme.req(crmpb::WinDealRequest {
            id: deal,
            request_id: request_id.into(),
            ..Default::default()
        }))
        .await
        .expect("deal won")
        .into_inner()
}

#[tokio::test]
async fn a_won_deal_gets_its_plans_commissions_once_paid_as_its_lot_sells_and_taken_back_on_reopening()
 {
    let nats = PrivateNats::start();
    let app = TestApp::spawn_with_events(&nats.url()).await;
    let (admin, agent, officer) = (
        app.acme.user_id,
        app.agent.user_id,
        app.finance_user.user_id,
    );
    // The lot's project has its own plan; any other deal is paid under the default.
    let project = app.project(&app.acme, "harbour").await;
    let lot = app.lot(&app.acme, project).await;
    let own = create_plan(
        &app,
        &app.acme,
        plan(
            "Harbour",
            project,
            vec![line(
                "sales_agent",
                "2",
                "",
                &[(agent, "70"), (officer, "30")],
                &[("exchanged", "50"), ("settled", "50")],
            )],
        ),
    )
    .await
    .unwrap();
    let default = create_plan(
        &app,
        &app.acme,
        plan(
            "Default",
            0,
            vec![line(
                "bdm",
                "",
                "0.01",
                &[(admin, "33.33"), (agent, "33.33"), (officer, "33.34")],
                &[("won", "100")],
            )],
        ),
    )
    .await
    .unwrap();

    // Won, and the same WinDeal retried: one winning.
    let deal = app
        .deal_on(&app.acme, "Harbour lot 1", lot, "549000.00")
        .await;
    let request_id = new_id();
    let first = win(&app, deal, &request_id).await;
    assert_eq!(win(&app, deal, &request_id).await, first);

    // 2 % of 549000.00 = 10980.00, 70/30, each half at exchange and half at
    // settlement. Property sells the won deal's lot (exchanged), so the exchanged
    // halves become payable.
    let made = commissions_of(&app, deal, "the exchanged halves payable", |c| {
        c.iter().filter(|c| c.status == "payable").count() == 2
    })
    .await;
    let mut found = parts(&made);
    found.sort_unstable();
    assert_eq!(
        found,
        [
            (agent, "exchanged", "3843.00", "payable"),
            (agent, "settled", "3843.00", "pending"),
            (officer, "exchanged", "1647.00", "payable"),
            (officer, "settled", "1647.00", "pending"),
        ]
    );
    let total: rust_decimal::Decimal = made
        .iter()
        .map(|c| c.amount.parse::<rust_decimal::Decimal>().unwrap())
        .sum();
    assert_eq!(total.to_string(), "10980.00");
    for c in &made {
        assert_eq!(
            (
                c.kind.as_str(),
                c.plan_id,
                c.rate.as_str(),
                c.commission_type.as_str(),
                c.currency_code.as_str()
            ),
            ("plan", own.id, "2.00", "sales_agent", "AUD")
        );
        assert_eq!(c.payable_time.is_some(), c.status == "payable");
    }

    // The same win delivered again (the envelope republished without its message id,
    // so JetStream does not drop it) changes nothing; the reopening below is applied
    // after it, by the same consumer.
    redeliver_last(&nats, "fusion.crm.deal.won").await;

    // A settlement part is not payable yet; an exchanged one is approved and paid.
    let settled = made.iter().find(|c| c.milestone == "settled").unwrap();
    assert_status_refused(approve(&app, settled.id, "").await);
    let paid = made
        .iter()
        .find(|c| c.milestone == "exchanged" && c.recipient_user_id == agent)
        .unwrap();
    approve(&app, paid.id, "").await.unwrap();
    let paid = pay(&app, paid.id, Some(date(2026, 4, 1))).await.unwrap();

    // Reopened: the three unpaid are cancelled and the paid one clawed back.
    DealServiceClient::new(app.peers.crm.clone())
        .move_deal_stage(app.acme.req(crmpb::MoveDealStageRequest {
            id: deal,
            stage: "property_enquiry".into(),
            ..Default::default()
        }))
        .await
        .expect("deal reopened");
    let after = commissions_of(&app, deal, "the deal's commissions taken back", |c| {
        c.len() == 5 && c.iter().filter(|c| c.status == "cancelled").count() == 3
    })
    .await;
    let clawback = &after[4];
    assert_eq!(
        (
            clawback.kind.as_str(),
            clawback.clawback_of_id,
            clawback.amount.as_str(),
            clawback.status.as_str(),
            clawback.recipient_user_id,
            clawback.milestone.as_str(),
        ),
        (
            "clawback",
            paid.id,
            "-3843.00",
            "payable",
            agent,
            "exchanged"
        )
    );
    let still_paid = after.iter().find(|c| c.id == paid.id).unwrap();
    assert_eq!(still_paid.status, "paid");
    // Paying a cancelled commission is refused.
    let cancelled = after.iter().find(|c| c.status == "cancelled").unwrap();
    assert_status_refused(approve(&app, cancelled.id, "").await);

    // A deal on a lot of a project without a plan is paid under the default: 0.01
    // three ways is 0.00, 0.00 and 0.01, payable at once (milestone won).
    let elsewhere = app.project(&app.acme, "elsewhere").await;
    let other_lot = app.lot(&app.acme, elsewhere).await;
    let small = app
        .deal_on(&app.acme, "Elsewhere lot 1", other_lot, "100000.00")
        .await;
    win(&app, small, &new_id()).await;
    let made = commissions_of(&app, small, "the default plan's commissions", |c| {
        c.len() == 3
    })
    .await;
    assert_eq!(
        parts(&made),
        [
            (admin, "won", "0.00", "payable"),
            (agent, "won", "0.00", "payable"),
            (officer, "won", "0.01", "payable"),
        ]
    );
    assert!(
        made.iter()
            .all(|c| c.plan_id == default.id && c.rate.is_empty())
    );
}

/// Publishes the last message on `subject` again, without its message id.
async fn redeliver_last(nats: &PrivateNats, subject: &str) {
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream("FUSION").await.unwrap();
    let last = stream
        .get_last_raw_message_by_subject(subject)
        .await
        .unwrap();
    js.publish(subject.to_owned(), last.payload)
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Moves lot `lot` one step as acme's admin: reserve (for `deal`), exchange,
/// unconditional, settle or revert.
async fn move_lot(app: &TestApp, lot: i64, step: &str, deal: i64) {
    let mut lots = LotServiceClient::new(app.peers.property.clone());
    let who = &app.acme;
    let moved = match step {
        "reserve" => {
            lots.reserve_lot(who.req(proppb::ReserveLotRequest {
                id: lot,
                deal_id: deal,
                ..Default::default()
            }))
            .await
        }
        "exchange" => {
            lots.exchange_lot(who.req(proppb::ExchangeLotRequest {
                id: lot,
                ..Default::default()
            }))
            .await
        }
        "unconditional" => {
            lots.mark_lot_unconditional(who.req(proppb::MarkLotUnconditionalRequest {
                id: lot,
                ..Default::default()
            }))
            .await
        }
        "settle" => {
            lots.settle_lot(who.req(proppb::SettleLotRequest {
                id: lot,
                ..Default::default()
            }))
            .await
        }
        "revert" => {
            lots.revert_lot(who.req(proppb::RevertLotRequest {
                id: lot,
                reason: "signed in error".into(),
                ..Default::default()
            }))
            .await
        }
        other => panic!("no lot step {other}"),
    };
    moved.unwrap_or_else(|s| panic!("{step} lot {lot}: {s:?}"));
}

/// Waits until finance has recorded deal `deal`'s lot at `milestone` (none: at no
/// milestone), as property's events told it.
async fn lot_recorded_at(app: &TestApp, deal: i64, milestone: Option<&str>) {
    let started = Instant::now();
    loop {
        let mut tx = app
            .finance
            .state()
            .db
            .begin(app.acme.tenant_id)
            .await
            .unwrap();
        let recorded: Option<Option<String>> =
            sqlx::query_scalar("SELECT milestone FROM finance.deal_milestones WHERE deal_id = $1")
                .bind(deal)
                .fetch_optional(&mut *tx)
                .await
                .unwrap();
        tx.commit().await.unwrap();
        if recorded.as_ref().map(Option::as_deref) == Some(milestone) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "deal {deal}'s lot recorded at {milestone:?} within 30 s; it is at {recorded:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes a `property.lot.status_changed` of acme's lot `lot` for `deal`, as
/// property would.
async fn publish_lot_change(
    app: &TestApp,
    nats: &PrivateNats,
    lot: i64,
    deal: i64,
    from: &str,
    to: &str,
) {
    use prost::Message as _;
    let change = proppb::LotStatusChanged {
        lot_id: lot,
        lot_number: "1".into(),
        from_status: from.into(),
        to_status: to.into(),
        deal_id: deal,
        ..Default::default()
    };
    let envelope = fusion_proto::common::v1::EventEnvelope {
        event_id: new_id(),
        event_type: "property.lot.status_changed".into(),
        tenant_id: app.acme.tenant_id,
        aggregate_type: "lot".into(),
        aggregate_id: lot,
        occur_time: Some(fusion_service::api::ts(chrono::Utc::now())),
        payload: change.encode_to_vec(),
        ..Default::default()
    };
    let client = async_nats::connect(nats.url()).await.unwrap();
    async_nats::jetstream::new(client)
        .publish(
            "fusion.property.lot.status_changed",
            envelope.encode_to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

/// `(milestone, status)` of each commission, in the order of the plan's milestones.
fn statuses(commissions: &[pb::Commission]) -> Vec<(&str, &str)> {
    let mut found: Vec<(&str, &str)> = commissions
        .iter()
        .map(|c| (c.milestone.as_str(), c.status.as_str()))
        .collect();
    let order = ["won", "exchanged", "unconditional", "settled"];
    found.sort_by_key(|(m, _)| order.iter().position(|o| o == m));
    found
}

#[tokio::test]
async fn milestones_are_payable_whichever_event_comes_first_and_a_lost_deal_takes_back_its_commissions()
 {
    let nats = PrivateNats::start();
    let app = TestApp::spawn_with_events(&nats.url()).await;
    let agent = app.agent.user_id;
    create_plan(
        &app,
        &app.acme,
        plan(
            "Staged",
            0,
            vec![line(
                "sub_agent",
                "",
                "1000.00",
                &[(agent, "100")],
                &[
                    ("exchanged", "50"),
                    ("unconditional", "25"),
                    ("settled", "25"),
                ],
            )],
        ),
    )
    .await
    .unwrap();

    // The lot is reserved for the deal and exchanged before it is won: finance learns
    // of the exchange first, and the win's exchanged part is payable at once.
    let early_lot = app
        .lot(&app.acme, app.project(&app.acme, "early").await)
        .await;
    let early = app
        .deal_on(&app.acme, "Early", early_lot, "549000.00")
        .await;
    move_lot(&app, early_lot, "reserve", early).await;
    move_lot(&app, early_lot, "exchange", early).await;
    lot_recorded_at(&app, early, Some("exchanged")).await;
    win(&app, early, &new_id()).await;
    let made = commissions_of(&app, early, "the early deal's commissions", |c| {
        c.len() == 3
    })
    .await;
    assert_eq!(
        statuses(&made),
        [
            ("exchanged", "payable"),
            ("unconditional", "pending"),
            ("settled", "pending")
        ]
    );
    let amounts: Vec<&str> = made.iter().map(|c| c.amount.as_str()).collect();
    assert_eq!(amounts, ["500.00", "250.00", "250.00"]);
    // Then each step of the sale makes its part payable.
    move_lot(&app, early_lot, "unconditional", early).await;
    commissions_of(&app, early, "the unconditional part payable", |c| {
        statuses(c)[1] == ("unconditional", "payable")
    })
    .await;
    move_lot(&app, early_lot, "settle", early).await;
    commissions_of(&app, early, "the settled part payable", |c| {
        c.iter().all(|c| c.status == "payable")
    })
    .await;

    // Won first (property sells the lot: exchanged), then reverted: what is payable
    // stays payable. Reaching settled makes every earlier part payable too.
    let late_lot = app
        .lot(&app.acme, app.project(&app.acme, "late").await)
        .await;
    let late = app.deal_on(&app.acme, "Late", late_lot, "549000.00").await;
    win(&app, late, &new_id()).await;
    commissions_of(&app, late, "the late deal's exchanged part payable", |c| {
        c.len() == 3 && statuses(c)[0] == ("exchanged", "payable")
    })
    .await;
    move_lot(&app, late_lot, "revert", late).await;
    lot_recorded_at(&app, late, None).await;
    let after_revert = commissions_of(&app, late, "the late deal's commissions", |_| true).await;
    assert_eq!(
        statuses(&after_revert),
        [
            ("exchanged", "payable"),
            ("unconditional", "pending"),
            ("settled", "pending")
        ]
    );
    publish_lot_change(&app, &nats, late_lot, late, "reserved", "settled").await;
    commissions_of(&app, late, "every part payable once settled", |c| {
        c.iter().all(|c| c.status == "payable")
    })
    .await;

    // A deal lost: its unpaid commissions are cancelled and the paid one clawed back.
    let lost = app.deal(&app.acme, "Lost").await;
    let unpaid = create(&app, &app.acme, manual(lost, agent, "300.00"))
        .await
        .unwrap();
    let paid = create(&app, &app.acme, manual(lost, agent, "200.00"))
        .await
        .unwrap();
    approve(&app, paid.id, "").await.unwrap();
    pay(&app, paid.id, None).await.unwrap();
    DealServiceClient::new(app.peers.crm.clone())
        .lose_deal(app.acme.req(crmpb::LoseDealRequest {
            id: lost,
            reason: "finance declined".into(),
            ..Default::default()
        }))
        .await
        .expect("deal lost");
    let after = commissions_of(&app, lost, "the lost deal's commissions taken back", |c| {
        c.len() == 3
    })
    .await;
    assert_eq!(
        after
            .iter()
            .map(|c| (c.id, c.status.as_str(), c.amount.as_str(), c.clawback_of_id))
            .collect::<Vec<_>>(),
        [
            (unpaid.id, "cancelled", "300.00", 0),
            (paid.id, "paid", "200.00", 0),
            (after[2].id, "payable", "-200.00", paid.id),
        ]
    );
}

#[tokio::test]
async fn the_days_of_summaries_and_payment_dates_are_the_tenants() {
    let app = TestApp::spawn().await;
    // A zone whose date is not UTC's now: 14 hours ahead in UTC's afternoon, 12 behind
    // in its morning. A day counted in UTC would then be the wrong day.
    let zone = if chrono::Timelike::hour(&chrono::Utc::now()) >= 12 {
        chrono_tz::Pacific::Kiritimati
    } else {
        chrono_tz::Etc::GMTPlus12
    };
    let identity = fusion_testkit::connect_channel(app.identity.grpc_addr()).await;
    TenantServiceClient::new(identity.clone())
        .update_tenant(app.acme.req(idpb::UpdateTenantRequest {
            tenant: Some(idpb::Tenant {
                id: app.acme.tenant_id,
                time_zone: zone.name().into(),
                ..Default::default()
            }),
            update_mask: mask(&["time_zone"]),
        }))
        .await
        .expect("acme's time zone changed");
    // A new session carries the zone.
    let admin =
        fusion_testkit::people::login(&identity, "admin@acme.test", crate::helpers::PASSWORD).await;
    let local_today = chrono::Utc::now().with_timezone(&zone).date_naive();

    let deal = app.deal(&admin, "Far east").await;
    let c = create(&app, &admin, manual(deal, app.agent.user_id, "10.00"))
        .await
        .unwrap();
    let mut client = app.commissions();
    client
        .approve_commission(admin.req(pb::ApproveCommissionRequest {
            id: c.id,
            ..Default::default()
        }))
        .await
        .unwrap();
    let paid = client
        .mark_commission_paid(admin.req(pb::MarkCommissionPaidRequest {
            id: c.id,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let after = chrono::Utc::now().with_timezone(&zone).date_naive();
    let paid_on = paid.payment_date.unwrap();
    assert!(
        [local_today, after]
            .map(fusion_service::api::date_pb)
            .contains(&paid_on),
        "{paid_on:?} is not today in {zone}"
    );

    let count = |day: chrono::NaiveDate| {
        let mut client = app.commissions();
        let req = admin.req(pb::SummarizeCommissionsRequest {
            start_date: Some(fusion_service::api::date_pb(day)),
            end_date: Some(fusion_service::api::date_pb(day)),
            recipient_user_id: 0,
        });
        async move {
            client
                .summarize_commissions(req)
                .await
                .unwrap()
                .into_inner()
                .totals
                .iter()
                .map(|t| t.commission_count)
                .sum::<i32>()
        }
    };
    let utc_today = chrono::Utc::now().date_naive();
    assert_ne!(utc_today, local_today);
    assert_eq!(count(local_today).await, 1);
    assert_eq!(count(utc_today).await, 0);
}
