//! Campaigns over gRPC: the status machine, the fields a closed campaign keeps, dates
//! and budget, and the campaign's leads — added by id or by a crm filter evaluated as
//! the caller, page by page and streamed, removed, listed — with the metrics they
//! drive.

use futures::StreamExt as _;
use tonic::{Code, Status};

use fusion_proto::aimarketing::v1 as pb;
use fusion_proto::crm::v1 as crmpb;
use fusion_proto::crm::v1::lead_service_client::LeadServiceClient;
use fusion_proto::google::r#type::Date;

use crate::helpers::{TestApp, User, assert_invalid, expect_code, mask, reason};

fn date(year: i32, month: i32, day: i32) -> Option<Date> {
    Some(Date { year, month, day })
}

/// Every response of an AddCampaignLeads call, or its error.
async fn add_leads(
    app: &TestApp,
    who: &User,
    request: pb::AddCampaignLeadsRequest,
) -> Result<Vec<pb::AddCampaignLeadsResponse>, Status> {
    let mut stream = app
        .campaigns()
        .add_campaign_leads(who.req(request))
        .await?
        .into_inner();
    let mut responses = Vec::new();
    while let Some(response) = stream.next().await {
        responses.push(response?);
    }
    Ok(responses)
}

/// The lead ids of a campaign, as ListCampaignLeads pages them.
async fn lead_ids(app: &TestApp, who: &User, campaign_id: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .campaigns()
            .list_campaign_leads(who.req(pb::ListCampaignLeadsRequest {
                campaign_id,
                page_size: 1000,
                page_token: token,
                order_by: "lead_id".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        ids.extend(page.campaign_leads.iter().map(|l| l.lead_id));
        token = page.next_page_token;
        if token.is_empty() {
            return ids;
        }
    }
}

#[tokio::test]
async fn the_status_machine_allows_each_step_only_from_its_statuses() {
    let app = TestApp::spawn().await;
    let mut campaigns = app.campaigns();
    let campaign = app.campaign(&app.marketer, "Spring open homes").await;
    assert_eq!(
        (campaign.status.as_str(), campaign.creator_user_id),
        ("draft", app.marketer.user_id)
    );
    let id = campaign.id;
    macro_rules! step {
        ($method:ident, $request:ident) => {
            campaigns
                .$method(app.marketer.req(pb::$request {
                    id,
                    ..Default::default()
                }))
                .await
                .map(|r| r.into_inner().status)
        };
    }
    let refused = |result: Result<String, Status>, expected: &str| {
        let status = expect_code(result, Code::FailedPrecondition);
        assert_eq!(reason(&status), expected, "{status:?}");
    };

    // A schedule needs a start date.
    refused(
        step!(schedule_campaign, ScheduleCampaignRequest),
        "CAMPAIGN_START_DATE_MISSING",
    );
    refused(
        step!(start_campaign, StartCampaignRequest),
        "CAMPAIGN_STATUS",
    );
    refused(
        step!(pause_campaign, PauseCampaignRequest),
        "CAMPAIGN_STATUS",
    );
    campaigns
        .update_campaign(app.marketer.req(pb::UpdateCampaignRequest {
            campaign: Some(pb::Campaign {
                id,
                start_date: date(2026, 9, 1),
                end_date: date(2026, 11, 30),
                ..Default::default()
            }),
            update_mask: mask(&["start_date", "end_date"]),
        }))
        .await
        .unwrap();
    // A retried step with its request id answers as the first did.
    let schedule = pb::ScheduleCampaignRequest {
        id,
        etag: String::new(),
        request_id: "5d2b8c1e-7a7f-4c52-9d7e-2f1f0c9a8b31".into(),
    };
    let first = campaigns
        .schedule_campaign(app.marketer.req(schedule.clone()))
        .await
        .unwrap()
        .into_inner();
    let retried = campaigns
        .schedule_campaign(app.marketer.req(schedule))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((first.status.as_str(), &retried), ("scheduled", &first));
    refused(
        step!(schedule_campaign, ScheduleCampaignRequest),
        "CAMPAIGN_STATUS",
    );
    refused(
        step!(resume_campaign, ResumeCampaignRequest),
        "CAMPAIGN_STATUS",
    );
    // A scheduled campaign keeps its start date.
    let cleared = campaigns
        .update_campaign(app.marketer.req(pb::UpdateCampaignRequest {
            campaign: Some(pb::Campaign {
                id,
                ..Default::default()
            }),
            update_mask: mask(&["start_date"]),
        }))
        .await;
    assert_invalid(cleared, &["campaign.start_date"]);

    assert_eq!(
        step!(start_campaign, StartCampaignRequest).unwrap(),
        "active"
    );
    // An active campaign is not deleted.
    let deleted = campaigns
        .delete_campaign(app.marketer.req(pb::DeleteCampaignRequest {
            id,
            etag: String::new(),
        }))
        .await
        .map(|r| r.into_inner().status);
    refused(deleted, "CAMPAIGN_STATUS");
    assert_eq!(
        step!(pause_campaign, PauseCampaignRequest).unwrap(),
        "paused"
    );
    refused(
        step!(pause_campaign, PauseCampaignRequest),
        "CAMPAIGN_STATUS",
    );
    assert_eq!(
        step!(resume_campaign, ResumeCampaignRequest).unwrap(),
        "active"
    );
    assert_eq!(
        step!(complete_campaign, CompleteCampaignRequest).unwrap(),
        "completed"
    );
    refused(
        step!(cancel_campaign, CancelCampaignRequest),
        "CAMPAIGN_STATUS",
    );
    refused(
        step!(start_campaign, StartCampaignRequest),
        "CAMPAIGN_STATUS",
    );

    // Closed: only the description and tags change, and the leads do not.
    let closed = campaigns
        .update_campaign(app.marketer.req(pb::UpdateCampaignRequest {
            campaign: Some(pb::Campaign {
                id,
                budget: "5000.00".into(),
                ..Default::default()
            }),
            update_mask: mask(&["budget"]),
        }))
        .await
        .map(|r| r.into_inner().status);
    refused(closed, "CAMPAIGN_CLOSED");
    let described = campaigns
        .update_campaign(app.marketer.req(pb::UpdateCampaignRequest {
            campaign: Some(pb::Campaign {
                id,
                description: "Ran to plan.".into(),
                tags: vec!["spring".into()],
                ..Default::default()
            }),
            update_mask: mask(&["description", "tags"]),
        }))
        .await
        .expect("a closed campaign's notes still change")
        .into_inner();
    assert_eq!(described.tags, ["spring"]);
    let lead = app.lead(&app.acme, "Mia", "Nguyen", &[]).await;
    let status = expect_code(
        add_leads(
            &app,
            &app.marketer,
            pb::AddCampaignLeadsRequest {
                campaign_id: id,
                lead_ids: vec![lead.id],
                ..Default::default()
            },
        )
        .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "CAMPAIGN_CLOSED");

    // A draft is cancelled straight away, and a cancelled one deleted.
    let other = app.campaign(&app.marketer, "Winter").await;
    let cancelled = campaigns
        .cancel_campaign(app.marketer.req(pb::CancelCampaignRequest {
            id: other.id,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status, "cancelled");
    campaigns
        .delete_campaign(app.marketer.req(pb::DeleteCampaignRequest {
            id: other.id,
            etag: cancelled.etag,
        }))
        .await
        .expect("a cancelled campaign is deleted");
}

#[tokio::test]
async fn types_dates_budget_and_currency_are_checked() {
    let app = TestApp::spawn().await;
    let mut campaigns = app.campaigns();
    let create = |campaign: pb::Campaign| pb::CreateCampaignRequest {
        campaign: Some(campaign),
        request_id: String::new(),
    };
    let base = pb::Campaign {
        name: "Checks".into(),
        r#type: "sms".into(),
        ..Default::default()
    };
    for (campaign, fields) in [
        (
            pb::Campaign {
                r#type: "billboard".into(),
                ..base.clone()
            },
            vec!["campaign.type"],
        ),
        (
            pb::Campaign {
                start_date: date(2026, 5, 2),
                end_date: date(2026, 5, 1),
                ..base.clone()
            },
            vec!["campaign.end_date"],
        ),
        (
            pb::Campaign {
                budget: "-1.00".into(),
                currency_code: "AUS".into(),
                ..base.clone()
            },
            vec!["campaign.budget", "campaign.currency_code"],
        ),
        (
            pb::Campaign {
                budget: "10.005".into(),
                start_date: date(2026, 2, 30),
                ..base.clone()
            },
            vec!["campaign.budget", "campaign.start_date"],
        ),
    ] {
        assert_invalid(
            campaigns
                .create_campaign(app.acme.req(create(campaign)))
                .await,
            &fields,
        );
    }
    let created = campaigns
        .create_campaign(app.acme.req(create(pb::Campaign {
            budget: "12500.5".into(),
            currency_code: "NZD".into(),
            start_date: date(2026, 5, 1),
            end_date: date(2026, 5, 1),
            ..base
        })))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (created.budget.as_str(), created.currency_code.as_str()),
        ("12500.50", "NZD")
    );
    let metrics = created.metrics.unwrap();
    assert_eq!(
        (
            metrics.targeted_lead_count,
            metrics.won_deal_value.as_str(),
            metrics.cost_per_lead.as_str()
        ),
        (0, "0.00", "")
    );
    // An end date moved before the stored start date is refused too.
    let refused = campaigns
        .update_campaign(app.acme.req(pb::UpdateCampaignRequest {
            campaign: Some(pb::Campaign {
                id: created.id,
                end_date: date(2026, 4, 30),
                ..Default::default()
            }),
            update_mask: mask(&["end_date"]),
        }))
        .await;
    assert_invalid(refused, &["campaign.end_date"]);
}

/// Imports `count` leads tagged `tag` for `who` through crm's ImportLeads.
async fn import_leads(app: &TestApp, who: &User, tag: &str, count: usize) {
    let rows: Vec<crmpb::Lead> = (0..count)
        .map(|i| crmpb::Lead {
            last_name: format!("{tag}-{i}"),
            email: format!("{tag}-{i}@example.com"),
            tags: vec![tag.to_owned()],
            ..Default::default()
        })
        .collect();
    let mut messages = vec![crmpb::ImportLeadsRequest {
        payload: Some(crmpb::import_leads_request::Payload::Options(
            crmpb::ImportLeadsOptions::default(),
        )),
    }];
    for batch in rows.chunks(1000) {
        messages.push(crmpb::ImportLeadsRequest {
            payload: Some(crmpb::import_leads_request::Payload::Batch(
                crmpb::ImportLeadsBatch {
                    leads: batch.to_vec(),
                },
            )),
        });
    }
    let imported = LeadServiceClient::new(app.peers.crm.clone())
        .import_leads(who.req(tokio_stream::iter(messages)))
        .await
        .expect("leads imported")
        .into_inner();
    assert_eq!(imported.created_count as usize, count);
}

#[tokio::test]
async fn leads_are_added_by_a_crm_filter_as_the_caller_page_by_page_without_a_cap() {
    let app = TestApp::spawn().await;
    import_leads(&app, &app.acme, "expo", 1_150).await;
    import_leads(&app, &app.acme, "other", 3).await;
    // Globex's leads with the same tag are not Acme's to add.
    import_leads(&app, &app.globex, "expo", 5).await;
    let campaign = app.campaign(&app.marketer, "Home show follow-up").await;
    let request = pb::AddCampaignLeadsRequest {
        campaign_id: campaign.id,
        filter: r#"tags:"expo""#.into(),
        request_id: "9a0f8e2c-3b1d-4f6a-8c7e-5d4b3a2f1e0d".into(),
        ..Default::default()
    };
    let responses = add_leads(&app, &app.marketer, request.clone())
        .await
        .expect("the leads are added");
    let progress: Vec<(i64, i64, i64, bool)> = responses
        .iter()
        .map(|r| {
            (
                r.sequence_number,
                r.matched_lead_count,
                r.added_lead_count,
                r.campaign.is_some(),
            )
        })
        .collect();
    assert_eq!(
        progress,
        [
            (1, 500, 500, false),
            (2, 1000, 1000, false),
            (3, 1150, 1150, true)
        ]
    );
    let after = responses[2].campaign.clone().unwrap();
    let metrics = after.metrics.clone().unwrap();
    // The budget of 1000.00 over 1150 leads.
    assert_eq!(
        (
            metrics.targeted_lead_count,
            metrics.cost_per_lead.as_str(),
            metrics.cost_per_sale.as_str()
        ),
        (1150, "0.87", "")
    );
    // The metrics moved; the campaign's etag did not.
    assert_eq!(after.etag, campaign.etag);
    let stored = app
        .campaigns()
        .get_campaign(app.marketer.req(pb::GetCampaignRequest { id: campaign.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.metrics, after.metrics);

    // The campaign holds exactly Acme's expo leads.
    let mut expected: Vec<i64> = Vec::new();
    let mut token = String::new();
    loop {
        let page = LeadServiceClient::new(app.peers.crm.clone())
            .list_leads(app.acme.req(crmpb::ListLeadsRequest {
                filter: r#"tags:"expo""#.into(),
                page_size: 1000,
                page_token: token,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        expected.extend(page.leads.iter().map(|l| l.id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    expected.sort_unstable();
    assert_eq!(lead_ids(&app, &app.marketer, campaign.id).await, expected);

    // A retry with the request id answers with the last response alone; the same
    // filter without it adds nothing new.
    let replayed = add_leads(&app, &app.marketer, request.clone())
        .await
        .unwrap();
    assert_eq!(replayed, [responses[2].clone()]);
    let again = add_leads(
        &app,
        &app.marketer,
        pb::AddCampaignLeadsRequest {
            request_id: String::new(),
            ..request
        },
    )
    .await
    .unwrap();
    let last = again.last().unwrap();
    assert_eq!((last.matched_lead_count, last.added_lead_count), (1150, 0));

    // crm judges the filter: a malformed one is the call's error, naming the field.
    let malformed = add_leads(
        &app,
        &app.marketer,
        pb::AddCampaignLeadsRequest {
            campaign_id: campaign.id,
            filter: "tags:".into(),
            ..Default::default()
        },
    )
    .await;
    assert_invalid(malformed, &["filter"]);
}

#[tokio::test]
async fn leads_are_added_by_id_removed_and_listed() {
    let app = TestApp::spawn().await;
    let mia = app.lead(&app.acme, "Mia", "Nguyen", &[]).await;
    let liam = app.lead(&app.acme, "Liam", "Walker", &[]).await;
    let theirs = app.lead(&app.globex, "Ava", "Smith", &[]).await;
    let campaign = app.campaign(&app.marketer, "Referral drive").await;
    let add = |lead_ids: Vec<i64>| pb::AddCampaignLeadsRequest {
        campaign_id: campaign.id,
        lead_ids,
        ..Default::default()
    };

    // Another tenant's lead is not there for the caller; nothing is added.
    let refused = add_leads(&app, &app.marketer, add(vec![mia.id, theirs.id])).await;
    assert_invalid(refused, &["lead_ids[1]"]);
    assert!(lead_ids(&app, &app.marketer, campaign.id).await.is_empty());
    // Neither ids and a filter nor neither.
    assert_invalid(
        add_leads(
            &app,
            &app.marketer,
            pb::AddCampaignLeadsRequest {
                filter: "score > 1".into(),
                ..add(vec![mia.id])
            },
        )
        .await,
        &["filter"],
    );
    assert_invalid(
        add_leads(&app, &app.marketer, add(Vec::new())).await,
        &["lead_ids"],
    );

    // Repeats count once; one page, carrying the campaign.
    let added = add_leads(&app, &app.marketer, add(vec![mia.id, liam.id, mia.id]))
        .await
        .unwrap();
    assert_eq!(added.len(), 1);
    assert_eq!(
        (
            added[0].sequence_number,
            added[0].matched_lead_count,
            added[0].added_lead_count
        ),
        (1, 2, 2)
    );
    let metrics = added[0].campaign.clone().unwrap().metrics.unwrap();
    assert_eq!(
        (metrics.targeted_lead_count, metrics.cost_per_lead.as_str()),
        (2, "500.00")
    );
    let mut both = vec![mia.id, liam.id];
    both.sort_unstable();
    assert_eq!(lead_ids(&app, &app.marketer, campaign.id).await, both);
    let listed = app
        .campaigns()
        .list_campaign_leads(app.marketer.req(pb::ListCampaignLeadsRequest {
            campaign_id: campaign.id,
            filter: format!("lead_id = {}", liam.id),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 1);
    let entry = &listed.campaign_leads[0];
    assert_eq!(
        (
            entry.campaign_id,
            entry.lead_id,
            entry.adder_user_id,
            entry.convert_time.is_some()
        ),
        (campaign.id, liam.id, app.marketer.user_id, false)
    );

    // Removing: what is not in the campaign is ignored; the metrics follow.
    let removed = app
        .campaigns()
        .remove_campaign_leads(app.marketer.req(pb::RemoveCampaignLeadsRequest {
            campaign_id: campaign.id,
            lead_ids: vec![mia.id, theirs.id],
            request_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.removed_lead_count, 1);
    let metrics = removed.campaign.unwrap().metrics.unwrap();
    assert_eq!(
        (metrics.targeted_lead_count, metrics.cost_per_lead.as_str()),
        (1, "1000.00")
    );
    assert_eq!(lead_ids(&app, &app.marketer, campaign.id).await, [liam.id]);

    // Another tenant sees neither the campaign nor its leads.
    expect_code(
        app.campaigns()
            .list_campaign_leads(app.globex.req(pb::ListCampaignLeadsRequest {
                campaign_id: campaign.id,
                ..Default::default()
            }))
            .await,
        Code::NotFound,
    );
    expect_code(
        add_leads(&app, &app.globex, add(vec![theirs.id])).await,
        Code::NotFound,
    );
}
