//! Campaign metrics measured from crm's events, end to end through a real private NATS
//! JetStream: crm converts a campaign's lead and wins its deal, relays
//! `crm.lead.converted` and `crm.deal.won`, and ai-marketing's consumer counts them
//! (converted leads, won deals and their value, cost per lead and per sale from the
//! budget); a reopened deal's win is taken back and a lost one stays out; a deal that
//! names only its contact is traced to the contact's lead with ai-marketing's system
//! account; a campaign that did not hold the lead counts nothing.

use std::time::{Duration, Instant};

use futures::StreamExt as _;

use fusion_proto::aimarketing::v1 as pb;
use fusion_proto::crm::v1 as crmpb;
use fusion_proto::crm::v1::{
    deal_service_client::DealServiceClient, lead_service_client::LeadServiceClient,
};
use fusion_testkit::PrivateNats;

use crate::helpers::{TestApp, User};

/// Adds `lead_ids` to campaign `campaign_id` as `who`.
async fn add_leads(app: &TestApp, who: &User, campaign_id: i64, lead_ids: Vec<i64>) {
    let mut stream = app
        .campaigns()
        .add_campaign_leads(who.req(pb::AddCampaignLeadsRequest {
            campaign_id,
            lead_ids,
            ..Default::default()
        }))
        .await
        .expect("leads added")
        .into_inner();
    while let Some(response) = stream.next().await {
        response.expect("a page added");
    }
}

/// Polls campaign `id`'s metrics until `done` holds of them; panics after 30 s naming
/// `what`.
async fn metrics_when(
    app: &TestApp,
    id: i64,
    what: &str,
    done: impl Fn(&pb::CampaignMetrics) -> bool,
) -> pb::CampaignMetrics {
    let started = Instant::now();
    loop {
        let metrics = app
            .campaigns()
            .get_campaign(app.acme.req(pb::GetCampaignRequest { id }))
            .await
            .expect("campaign read")
            .into_inner()
            .metrics
            .expect("a campaign has metrics");
        if done(&metrics) {
            return metrics;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} within 30 s; campaign {id} has {metrics:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `(targeted, converted, won, won value, cost per lead, cost per sale)`.
fn figures(m: &pb::CampaignMetrics) -> (i32, i32, i32, &str, &str, &str) {
    (
        m.targeted_lead_count,
        m.converted_lead_count,
        m.won_deal_count,
        m.won_deal_value.as_str(),
        m.cost_per_lead.as_str(),
        m.cost_per_sale.as_str(),
    )
}

async fn convert(
    app: &TestApp,
    lead_id: i64,
    deal: Option<crmpb::Deal>,
) -> crmpb::ConvertLeadResponse {
    LeadServiceClient::new(app.peers.crm.clone())
        .convert_lead(app.acme.req(crmpb::ConvertLeadRequest {
            id: lead_id,
            create_deal: deal.is_some(),
            deal,
            ..Default::default()
        }))
        .await
        .expect("lead converted")
        .into_inner()
}

async fn win(app: &TestApp, id: i64) {
    DealServiceClient::new(app.peers.crm.clone())
        .win_deal(app.acme.req(crmpb::WinDealRequest {
            id,
            ..Default::default()
        }))
        .await
        .expect("deal won");
}

async fn reopen(app: &TestApp, id: i64) {
    DealServiceClient::new(app.peers.crm.clone())
        .move_deal_stage(app.acme.req(crmpb::MoveDealStageRequest {
            id,
            stage: "property_enquiry".into(),
            ..Default::default()
        }))
        .await
        .expect("deal reopened");
}

#[tokio::test]
async fn conversions_and_won_deals_of_a_campaign_s_leads_are_measured_from_crm_s_events() {
    let nats = PrivateNats::start();
    let app = TestApp::spawn_with_events(&nats.url()).await;
    let mia = app.lead(&app.acme, "Mia", "Nguyen", &[]).await;
    let noah = app.lead(&app.acme, "Noah", "Patel", &[]).await;
    // Budget 1000.00 AUD, two leads.
    let campaign = app.campaign(&app.marketer, "Spring open homes").await;
    add_leads(&app, &app.marketer, campaign.id, vec![mia.id, noah.id]).await;
    // Another campaign, holding neither lead, counts nothing of theirs.
    let other = app.campaign(&app.marketer, "Autumn open homes").await;

    // Mia converts, with a deal, which is won.
    let converted = convert(
        &app,
        mia.id,
        Some(crmpb::Deal {
            value: "549000.00".into(),
            ..Default::default()
        }),
    )
    .await;
    let deal = converted.deal.expect("the conversion's deal");
    metrics_when(&app, campaign.id, "Mia's conversion counted", |m| {
        m.converted_lead_count == 1
    })
    .await;
    win(&app, deal.id).await;
    let metrics = metrics_when(&app, campaign.id, "Mia's deal counted", |m| {
        m.won_deal_count == 1
    })
    .await;
    assert_eq!(
        figures(&metrics),
        (2, 1, 1, "549000.00", "500.00", "1000.00"),
        "cost per lead is the budget over 2 leads, per sale over 1 won deal"
    );
    let leads = app
        .campaigns()
        .list_campaign_leads(app.acme.req(pb::ListCampaignLeadsRequest {
            campaign_id: campaign.id,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .campaign_leads;
    let convert_time = |lead: i64| {
        leads
            .iter()
            .find(|l| l.lead_id == lead)
            .and_then(|l| l.convert_time)
    };
    assert_eq!(convert_time(mia.id), converted.lead.unwrap().convert_time);
    assert_eq!(convert_time(noah.id), None);

    // Reopened: the win is taken back, the conversion stays.
    reopen(&app, deal.id).await;
    let metrics = metrics_when(&app, campaign.id, "the reopened deal taken back", |m| {
        m.won_deal_count == 0
    })
    .await;
    assert_eq!(figures(&metrics), (2, 1, 0, "0.00", "500.00", ""));
    // Won again, it counts again; reopened and lost, it is gone.
    win(&app, deal.id).await;
    metrics_when(&app, campaign.id, "the deal won again", |m| {
        m.won_deal_count == 1
    })
    .await;
    reopen(&app, deal.id).await;
    DealServiceClient::new(app.peers.crm.clone())
        .lose_deal(app.acme.req(crmpb::LoseDealRequest {
            id: deal.id,
            reason: "finance declined".into(),
            ..Default::default()
        }))
        .await
        .expect("deal lost");

    // Noah converts without a deal; a deal for his contact naming no lead is traced to
    // him through the contact, read from crm as ai-marketing's system account.
    let contact = convert(&app, noah.id, None)
        .await
        .contact
        .expect("Noah's contact");
    let contact_deal = app.deal(&app.acme, 0, contact.id, 0).await;
    assert_eq!(contact_deal.lead_id, 0);
    win(&app, contact_deal.id).await;
    let metrics = metrics_when(&app, campaign.id, "Noah's contact's deal counted", |m| {
        m.converted_lead_count == 2 && m.won_deal_count == 1
    })
    .await;
    assert_eq!(
        figures(&metrics),
        (2, 2, 1, "549000.00", "500.00", "1000.00"),
        "Mia's lost deal stays out; Noah's counts"
    );

    let untouched = app
        .campaigns()
        .get_campaign(app.acme.req(pb::GetCampaignRequest { id: other.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        figures(&untouched.metrics.unwrap()),
        (0, 0, 0, "0.00", "", "")
    );
    // Metrics change without changing the campaign's etag.
    let now = app
        .campaigns()
        .get_campaign(app.acme.req(pb::GetCampaignRequest { id: campaign.id }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.etag, campaign.etag);
}

#[tokio::test]
async fn a_lead_converted_before_it_joined_a_campaign_is_not_that_campaign_s_result() {
    let nats = PrivateNats::start();
    let app = TestApp::spawn_with_events(&nats.url()).await;
    let olivia = app.lead(&app.acme, "Olivia", "Chen", &[]).await;
    let liam = app.lead(&app.acme, "Liam", "Walker", &[]).await;
    let early = app.campaign(&app.marketer, "Early").await;
    add_leads(&app, &app.marketer, early.id, vec![olivia.id]).await;
    convert(&app, olivia.id, None).await;
    metrics_when(&app, early.id, "Olivia's conversion counted", |m| {
        m.converted_lead_count == 1
    })
    .await;

    // Olivia joins a later campaign after converting: not its result. Liam, who joins
    // with her and converts afterwards, is.
    let late = app.campaign(&app.marketer, "Late").await;
    add_leads(&app, &app.marketer, late.id, vec![olivia.id, liam.id]).await;
    convert(&app, liam.id, None).await;
    let metrics = metrics_when(&app, late.id, "Liam's conversion counted", |m| {
        m.converted_lead_count == 1
    })
    .await;
    assert_eq!(figures(&metrics), (2, 1, 0, "0.00", "500.00", ""));

    // Removing a lead takes its conversion out of the campaign's results.
    app.campaigns()
        .remove_campaign_leads(app.marketer.req(pb::RemoveCampaignLeadsRequest {
            campaign_id: early.id,
            lead_ids: vec![olivia.id],
            ..Default::default()
        }))
        .await
        .unwrap();
    let metrics = metrics_when(&app, early.id, "Olivia removed", |m| {
        m.targeted_lead_count == 0
    })
    .await;
    assert_eq!(figures(&metrics), (0, 0, 0, "0.00", "", ""));
}
