//! What became of campaigns' leads, as crm's events tell it: a lead's conversion
//! (`campaign_leads.converted_at`) and its deals won (`campaign_deals`), each counted
//! for the campaigns that held the lead before it happened.
//!
//! Every change locks the campaigns it touches first (in id order, as
//! [`lock_for_results`] does), then changes their rows, then recomputes their metrics,
//! all in the consumer's transaction: an AddCampaignLeads or a budget change in
//! flight on one of them is waited for, so the metrics count what both did. Closed and
//! deleted campaigns are counted too: results keep arriving after a campaign ends.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use fusion_db::TenantTx;

use crate::error::AiMarketingError;
use crate::store::campaigns::{lock_for_results, refresh_metrics};

/// A deal won, for the campaigns holding its lead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Win {
    /// The crm deal.
    pub deal_id: i64,
    /// Its lead.
    pub lead_id: i64,
    /// Its value; zero when it has none.
    pub value: Decimal,
    /// Its currency (ISO 4217).
    pub currency: String,
    /// When it was won.
    pub won_at: DateTime<Utc>,
}

/// Whether any campaign of the tenant holds a lead: a won deal that names no lead is
/// worth tracing to one only then.
pub(crate) async fn any_campaign_leads(tx: &mut TenantTx) -> Result<bool, AiMarketingError> {
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM ai_marketing.campaign_leads)")
        .fetch_one(&mut **tx)
        .await?;
    Ok(any)
}

/// Records lead `lead_id` converted at `at` in every campaign that held it by then
/// (a conversion already recorded stays as it is); returns how many campaigns
/// counted it.
pub(crate) async fn lead_converted(
    tx: &mut TenantTx,
    lead_id: i64,
    at: DateTime<Utc>,
) -> Result<u64, AiMarketingError> {
    let holding: Vec<i64> = sqlx::query_scalar(
        "SELECT campaign_id FROM ai_marketing.campaign_leads
          WHERE lead_id = $1 AND created_at <= $2 AND converted_at IS NULL",
    )
    .bind(lead_id)
    .bind(at)
    .fetch_all(&mut **tx)
    .await?;
    if holding.is_empty() {
        return Ok(0);
    }
    let campaigns = lock_for_results(tx, &holding).await?;
    let counted = sqlx::query(
        "UPDATE ai_marketing.campaign_leads SET converted_at = $3
          WHERE campaign_id = ANY($1) AND lead_id = $2 AND created_at <= $3
            AND converted_at IS NULL",
    )
    .bind(&holding)
    .bind(lead_id)
    .bind(at)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    for campaign in &campaigns {
        refresh_metrics(tx, campaign).await?;
    }
    Ok(counted)
}

/// Records `win` for every campaign that held its lead by the time it was won (a
/// deal won again after a reopen replaces its earlier win); returns how many
/// campaigns counted it.
pub(crate) async fn deal_won(tx: &mut TenantTx, win: &Win) -> Result<u64, AiMarketingError> {
    let holding: Vec<i64> = sqlx::query_scalar(
        "SELECT campaign_id FROM ai_marketing.campaign_leads
          WHERE lead_id = $1 AND created_at <= $2",
    )
    .bind(win.lead_id)
    .bind(win.won_at)
    .fetch_all(&mut **tx)
    .await?;
    if holding.is_empty() {
        return Ok(0);
    }
    let campaigns = lock_for_results(tx, &holding).await?;
    let counted = sqlx::query(
        "INSERT INTO ai_marketing.campaign_deals
                (tenant_id, campaign_id, deal_id, lead_id, value, currency, won_at)
         SELECT $1, campaign_id, $3, $4, $5, $6, $7 FROM unnest($2::bigint[]) AS campaign_id
         ON CONFLICT (tenant_id, campaign_id, deal_id) DO UPDATE
            SET lead_id = EXCLUDED.lead_id, value = EXCLUDED.value,
                currency = EXCLUDED.currency, won_at = EXCLUDED.won_at",
    )
    .bind(tx.tenant_id())
    .bind(&holding)
    .bind(win.deal_id)
    .bind(win.lead_id)
    .bind(win.value)
    .bind(&win.currency)
    .bind(win.won_at)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    for campaign in &campaigns {
        refresh_metrics(tx, campaign).await?;
    }
    Ok(counted)
}

/// Takes deal `deal_id`'s win back from every campaign that counted it (the deal was
/// reopened, or lost after a reopen); returns how many did.
pub(crate) async fn deal_unwon(tx: &mut TenantTx, deal_id: i64) -> Result<u64, AiMarketingError> {
    let counting: Vec<i64> = sqlx::query_scalar(
        "SELECT campaign_id FROM ai_marketing.campaign_deals WHERE deal_id = $1",
    )
    .bind(deal_id)
    .fetch_all(&mut **tx)
    .await?;
    if counting.is_empty() {
        return Ok(0);
    }
    let campaigns = lock_for_results(tx, &counting).await?;
    let removed = sqlx::query(
        "DELETE FROM ai_marketing.campaign_deals WHERE campaign_id = ANY($1) AND deal_id = $2",
    )
    .bind(&counting)
    .bind(deal_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    for campaign in &campaigns {
        refresh_metrics(tx, campaign).await?;
    }
    Ok(removed)
}
