//! Campaign results from crm's events: ai-marketing's consumer of crm's lead and deal
//! events (`ai-marketing-campaign-results`), which keeps each campaign's metrics
//! measured rather than typed in.
//!
//! - `crm.lead.converted`: the lead counts as converted in every campaign that held
//!   it when it converted.
//! - `crm.deal.won`: the deal, with its value and currency, counts for every campaign
//!   that held its lead when it was won (the time crm won it, the event's
//!   `occur_time`). A deal that names no lead but a contact converted from a lead is
//!   traced to that lead, the contact read from crm as ai-marketing's system account
//!   in the event's tenant (and only when the tenant's campaigns hold any lead at all).
//! - `crm.deal.reopened` from won, and `crm.deal.lost`: the deal's win is taken back.
//!
//! Each touched campaign's metrics are recomputed in the same transaction
//! (`store::campaign_results`). One consumer receives the four types (it filters on
//! `fusion.crm.*.*` and acknowledges crm's other events without effect), so a deal's
//! win and its reopening are applied in the order crm committed them; the inbox row in
//! the same transaction makes a redelivery a no-op.

use std::time::Duration;

use rust_decimal::Decimal;

use fusion_db::TenantTx;
use fusion_events::{Delivery, Handler};
use fusion_proto::crm::v1::{DealLost, DealReopened, DealWon, LeadConverted};
use fusion_service::api::{parse_decimal, parse_ts};
use fusion_tenancy::TenantContext;

use crate::error::AiMarketingError;
use crate::refs::{Refs, Seen};
use crate::store::campaign_results::{self, Win};

/// The durable consumer's name (and its inbox rows').
pub const CONSUMER: &str = "ai-marketing-campaign-results";

/// The events it receives.
pub const EVENTS: &[&str] = &[CONVERTED, WON, LOST, REOPENED];

const CONVERTED: &str = "crm.lead.converted";
const WON: &str = "crm.deal.won";
const LOST: &str = "crm.deal.lost";
const REOPENED: &str = "crm.deal.reopened";

/// How long crm is given to say which lead a won deal's contact came from.
const CRM_TIMEOUT: Duration = Duration::from_secs(5);

/// Handles crm's lead and deal events.
#[derive(Clone, Debug)]
pub struct CampaignResults {
    /// Crm, for the lead of a won deal that names only its contact.
    pub refs: Refs,
}

impl Handler for CampaignResults {
    async fn handle(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        match event.envelope.event_type.as_str() {
            CONVERTED => {
                let converted: LeadConverted = event.payload()?;
                anyhow::ensure!(converted.lead_id > 0, "lead_id must be a positive id");
                let at = converted
                    .convert_time
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("convert_time is required"))
                    .and_then(|t| parse_ts(t).map_err(anyhow::Error::msg))?;
                let counted = campaign_results::lead_converted(tx, converted.lead_id, at)
                    .await
                    .map_err(AiMarketingError::into_event_error)?;
                tracing::info!(
                    lead_id = converted.lead_id,
                    campaigns = counted,
                    "a lead's conversion counted"
                );
                Ok(())
            }
            WON => self.won(tx, event).await,
            LOST => {
                let lost: DealLost = event.payload()?;
                anyhow::ensure!(lost.deal_id > 0, "deal_id must be a positive id");
                take_back(tx, lost.deal_id, "lost").await
            }
            REOPENED => {
                let reopened: DealReopened = event.payload()?;
                anyhow::ensure!(reopened.deal_id > 0, "deal_id must be a positive id");
                if reopened.previous_status == "won" {
                    take_back(tx, reopened.deal_id, "reopened").await
                } else {
                    Ok(())
                }
            }
            other => anyhow::bail!("{CONSUMER} does not handle {other}"),
        }
    }
}

impl CampaignResults {
    /// Counts a won deal for the campaigns holding its lead.
    async fn won(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        let won: DealWon = event.payload()?;
        anyhow::ensure!(won.deal_id > 0, "deal_id must be a positive id");
        anyhow::ensure!(
            won.lead_id >= 0 && won.contact_id >= 0,
            "lead_id and contact_id must be positive ids, or 0 for none"
        );
        fusion_service::validate::currency_code(&won.currency_code)
            .map_err(|e| anyhow::anyhow!("currency_code {e}"))?;
        let value = parse_decimal(&won.value, 10, 2, Some((Decimal::ZERO, Decimal::MAX)))
            .map_err(|e| anyhow::anyhow!("value {e}"))?
            .unwrap_or_default();
        let won_at = event
            .envelope
            .occur_time
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the envelope's occur_time is required"))
            .and_then(|t| parse_ts(t).map_err(anyhow::Error::msg))?;
        let lead_id = if won.lead_id > 0 {
            won.lead_id
        } else if won.contact_id > 0
            && campaign_results::any_campaign_leads(tx)
                .await
                .map_err(AiMarketingError::into_event_error)?
        {
            self.lead_of_contact(event, won.contact_id).await?
        } else {
            0
        };
        if lead_id == 0 {
            return Ok(());
        }
        let win = Win {
            deal_id: won.deal_id,
            lead_id,
            value,
            currency: won.currency_code,
            won_at,
        };
        let counted = campaign_results::deal_won(tx, &win)
            .await
            .map_err(AiMarketingError::into_event_error)?;
        tracing::info!(
            deal_id = win.deal_id,
            lead_id,
            campaigns = counted,
            "a won deal counted"
        );
        Ok(())
    }

    /// The lead contact `contact_id` was converted from (0: none, or no such
    /// contact), asked of crm as ai-marketing's system account in the event's tenant.
    /// Without service credentials ai-marketing cannot ask, and the event fails.
    async fn lead_of_contact(&self, event: &Delivery, contact_id: i64) -> anyhow::Result<i64> {
        let Some(caller) = &event.caller else {
            anyhow::bail!(
                "ai-marketing has no service credentials (AIMARKETING_SERVICE_CLIENT_SECRET), \
                 so it cannot ask crm which lead contact {contact_id} of a won deal came from"
            );
        };
        let as_system = TenantContext {
            tenant_id: event.envelope.tenant_id,
            user_id: caller.account_id,
            roles: Vec::new(),
            permissions: Default::default(),
            request_id: None,
            bearer: Some(caller.access_token.clone()),
            time_zone: TenantContext::zone_of(Some(&caller.time_zone)),
            service_account: true,
        };
        let asked = tokio::time::timeout(
            CRM_TIMEOUT,
            as_system.scope(self.refs.contact("contact_id", contact_id)),
        )
        .await
        .unwrap_or_else(|_| {
            Err(AiMarketingError::OwnerUnavailable {
                owner: "crm",
                field: "contact_id".to_owned(),
            })
        })
        .map_err(AiMarketingError::into_event_error)?;
        match asked {
            Seen::Visible(contact) => Ok(contact.lead_id),
            Seen::Missing => Ok(0),
            Seen::Refused(status) => anyhow::bail!(
                "crm refused ai-marketing's system account contact {contact_id}: {}",
                status.message()
            ),
        }
    }
}

/// Takes deal `deal_id`'s win back from the campaigns that counted it, the deal having
/// been `why`.
async fn take_back(tx: &mut TenantTx, deal_id: i64, why: &str) -> anyhow::Result<()> {
    let taken = campaign_results::deal_unwon(tx, deal_id)
        .await
        .map_err(AiMarketingError::into_event_error)?;
    tracing::info!(
        deal_id,
        why,
        campaigns = taken,
        "a deal no longer won taken back"
    );
    Ok(())
}
