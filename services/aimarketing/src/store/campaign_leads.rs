//! Campaigns ↔ leads (`ai_marketing.campaign_leads`): a lead is in a campaign at most
//! once, so adding is a set union (a retried or overlapping add adds only what is
//! missing) and removing a set difference (a removed lead's deals leave the
//! campaign's results with it). Each change recomputes the campaign's metrics in the
//! same transaction.

use chrono::{DateTime, Utc};

use fusion_db::TenantTx;
use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_proto::aimarketing::v1 as pb;
use fusion_service::api::{opt_ts, ts};

use crate::error::AiMarketingError;
use crate::store::campaigns::{CampaignRow, refresh_metrics};

/// What ListCampaignLeads reads, within one campaign (its scope).
pub(crate) const LIST: ListSpec = ListSpec {
    table: "ai_marketing.campaign_leads",
    select: "campaign_id, lead_id, user_id, created_at, converted_at",
    fields: &[
        FieldSpec::new("lead_id", "lead_id", FieldKind::Int),
        FieldSpec::new("adder_user_id", "user_id", FieldKind::Int),
        FieldSpec::new("add_time", "created_at", FieldKind::Timestamp),
        FieldSpec::new("convert_time", "converted_at", FieldKind::Timestamp),
    ],
    order_fields: &["add_time", "lead_id"],
    default_order: "add_time desc",
    soft_delete: false,
    tenant_scoped: true,
};

/// The most leads one request names.
pub(crate) const MAX_IDS: usize = 1_000;

#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct CampaignLeadRow {
    pub campaign_id: i64,
    pub lead_id: i64,
    pub user_id: i64,
    pub created_at: DateTime<Utc>,
    pub converted_at: Option<DateTime<Utc>>,
}

/// Adds `lead_ids` to `campaign` (locked open by the caller's transaction) as
/// `user_id`; returns how many were not in it already.
pub(crate) async fn add(
    tx: &mut TenantTx,
    campaign: &CampaignRow,
    lead_ids: &[i64],
    user_id: i64,
) -> Result<i64, AiMarketingError> {
    let added = sqlx::query(
        "INSERT INTO ai_marketing.campaign_leads (tenant_id, campaign_id, lead_id, user_id)
         SELECT $1, $2, lead_id, $4 FROM unnest($3::bigint[]) AS lead_id
         ON CONFLICT (tenant_id, campaign_id, lead_id) DO NOTHING",
    )
    .bind(tx.tenant_id())
    .bind(campaign.id)
    .bind(lead_ids)
    .bind(user_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    refresh_metrics(tx, campaign).await?;
    Ok(i64::try_from(added).unwrap_or(i64::MAX))
}

/// Removes `lead_ids` from `campaign` (locked open by the caller's transaction), and
/// with them their deals won from its results; returns how many were in it.
pub(crate) async fn remove(
    tx: &mut TenantTx,
    campaign: &CampaignRow,
    lead_ids: &[i64],
) -> Result<i64, AiMarketingError> {
    sqlx::query(
        "DELETE FROM ai_marketing.campaign_deals WHERE campaign_id = $1 AND lead_id = ANY($2)",
    )
    .bind(campaign.id)
    .bind(lead_ids)
    .execute(&mut **tx)
    .await?;
    let removed = sqlx::query(
        "DELETE FROM ai_marketing.campaign_leads WHERE campaign_id = $1 AND lead_id = ANY($2)",
    )
    .bind(campaign.id)
    .bind(lead_ids)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    refresh_metrics(tx, campaign).await?;
    Ok(i64::try_from(removed).unwrap_or(i64::MAX))
}

/// The wire form of a stored campaign lead.
pub(crate) fn to_pb(r: CampaignLeadRow) -> pb::CampaignLead {
    pb::CampaignLead {
        campaign_id: r.campaign_id,
        lead_id: r.lead_id,
        adder_user_id: r.user_id,
        add_time: Some(ts(r.created_at)),
        convert_time: opt_ts(r.converted_at),
    }
}
