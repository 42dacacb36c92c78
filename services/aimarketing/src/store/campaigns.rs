//! Campaigns: their row, their description for the standard methods, the closed
//! campaign's lock on its fields, and their metrics.
//!
//! Metrics are computed here from `campaign_leads` and `campaign_deals` and written to
//! the seed's `metrics` column in the transaction that changes what they count (the
//! campaign's budget or currency, its leads, a lead's outcome as crm's events tell it,
//! see `store::campaign_results`), without moving the campaign's version: an editor's
//! etag does not go stale because a lead converted.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use fusion_db::TenantTx;
use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::{Table, Val, Values};
use fusion_proto::aimarketing::v1 as pb;
use fusion_service::api::{date_pb, etag, opt_ts, parse_decimal, populated, ts};
use fusion_service::standard::{Call, Kit, Method, Resource};
use fusion_service::validate;

use crate::domain::campaign::{self, Counts, Metrics};
use crate::error::AiMarketingError;
use crate::store::{date_of, places, tags_of, tags_val, values_of};
use crate::{AppState, DOMAIN};

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "ai_marketing.campaigns",
    select: SELECT,
    what: "campaign",
};

const SELECT: &str = "id, tenant_id, user_id, name, description, type, status, start_date, \
    end_date, budget, metrics, tags, currency, version, created_at, updated_at, deleted_at";

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("name", "name", FieldKind::Text),
    FieldSpec::new("type", "type", FieldKind::Text),
    FieldSpec::new("status", "status", FieldKind::Text),
    FieldSpec::new("creator_user_id", "user_id", FieldKind::Int),
    FieldSpec::new("start_date", "start_date", FieldKind::Date),
    FieldSpec::new("end_date", "end_date", FieldKind::Date),
    FieldSpec::new("budget", "budget", FieldKind::Decimal),
    FieldSpec::new("currency_code", "currency", FieldKind::Text),
    FieldSpec::new("tags", "tags", FieldKind::Tags),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
    FieldSpec::new("update_time", "updated_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &[
        "name",
        "start_date",
        "end_date",
        "budget",
        "create_time",
        "update_time",
    ],
    default_order: "create_time desc",
    soft_delete: true,
    tenant_scoped: true,
};

/// What Create sets and Update may change.
pub(crate) const MUTABLE: &[&str] = &[
    "name",
    "description",
    "type",
    "start_date",
    "end_date",
    "budget",
    "currency_code",
    "tags",
];

/// What a closed campaign may still change.
const ALWAYS_MUTABLE: &[&str] = &["description", "tags"];

#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct CampaignRow {
    pub id: i64,
    pub tenant_id: i64,
    pub user_id: i64,
    pub name: String,
    pub description: Option<String>,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub status: String,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub budget: Option<Decimal>,
    pub metrics: Option<serde_json::Value>,
    pub tags: Option<serde_json::Value>,
    pub currency: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(CampaignRow);

/// Campaigns on the standard methods: created draft by the caller, dates in order, a
/// closed campaign's fields locked but its description and tags, an active one not
/// deleted, and the metrics recomputed when the budget or currency changes.
pub(crate) struct Campaigns;

impl Resource for Campaigns {
    type Row = CampaignRow;
    type Pb = pb::Campaign;
    type State = AppState;
    type Error = AiMarketingError;

    const SINGULAR: &'static str = "Campaign";
    const FIELD: &'static str = "campaign";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = MUTABLE;
    const MUTABLE: &'static [&'static str] = MUTABLE;

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: CampaignRow) -> pb::Campaign {
        to_pb(&state.kit, r)
    }

    fn id(c: &pb::Campaign) -> i64 {
        c.id
    }

    fn etag(c: &pb::Campaign) -> &str {
        &c.etag
    }

    fn populated(c: &pb::Campaign) -> Vec<&'static str> {
        populated(&[
            ("name", !c.name.is_empty()),
            ("description", !c.description.is_empty()),
            ("type", !c.r#type.is_empty()),
            ("start_date", c.start_date.is_some()),
            ("end_date", c.end_date.is_some()),
            ("budget", !c.budget.is_empty()),
            ("currency_code", !c.currency_code.is_empty()),
            ("tags", !c.tags.is_empty()),
        ])
    }

    /// Checked field by field; the dates against each other where the sent and stored
    /// values meet (`on_create`, `on_update`).
    fn values(
        _: &AppState,
        c: &pb::Campaign,
        fields: &[&str],
        method: Method,
    ) -> Result<Values, AiMarketingError> {
        values_of("campaign", fields, |field| {
            Ok(Some(match field {
                "name" => {
                    validate::name(&c.name)?;
                    ("name", Val::text(&c.name))
                }
                "description" => {
                    validate::max_len(&c.description, 10_000)?;
                    ("description", Val::text(&c.description))
                }
                "type" => {
                    if c.r#type.trim().is_empty() {
                        return Err(format!(
                            "is required: one of {}",
                            campaign::TYPES.join(", ")
                        ));
                    }
                    validate::one_of(&c.r#type, campaign::TYPES)?;
                    ("type", Val::text(&c.r#type))
                }
                "start_date" => ("start_date", Val::Date(date_of(&c.start_date)?)),
                "end_date" => ("end_date", Val::Date(date_of(&c.end_date)?)),
                "budget" => ("budget", Val::Decimal(budget(&c.budget)?)),
                "currency_code" => match c.currency_code.trim() {
                    "" if method == Method::Create => return Ok(None),
                    "" => return Err("is required: an ISO 4217 code such as AUD".into()),
                    code => {
                        validate::currency_code(code)?;
                        ("currency", Val::text(code))
                    }
                },
                "tags" => ("tags", tags_val(&c.tags)?),
                _ => return Ok(None),
            }))
        })
    }

    /// The caller is the creator; the dates are in order; the metrics start at zero.
    async fn on_create(
        call: &Call<'_, AppState>,
        _: &mut TenantTx,
        c: &pb::Campaign,
        values: &mut Values,
    ) -> Result<(), AiMarketingError> {
        check_dates(
            date_of(&c.start_date).ok().flatten(),
            date_of(&c.end_date).ok().flatten(),
        )?;
        values.push(("user_id", Val::Int(Some(call.caller.user_id))));
        let budget =
            budget(&c.budget).map_err(|e| AiMarketingError::invalid("campaign.budget", e))?;
        let metrics = Metrics::compute(budget, Counts::default());
        values.push(("metrics", Val::Json(metrics_json(&metrics)?)));
        Ok(())
    }

    /// Refuses what a closed campaign no longer changes, keeps the dates in order and
    /// a scheduled campaign's start date, and recomputes the metrics with a new budget
    /// or currency.
    async fn on_update(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &CampaignRow,
        c: &pb::Campaign,
        values: &mut Values,
    ) -> Result<(), AiMarketingError> {
        if campaign::closed(&current.status)
            && let Some(field) = call.fields.iter().find(|f| !ALWAYS_MUTABLE.contains(f))
        {
            return Err(AiMarketingError::CampaignClosed {
                id: current.id,
                status: current.status.clone(),
                what: (*field).to_owned(),
            });
        }
        let changing = |f: &str| call.fields.contains(&f);
        let sent = |d: &Option<fusion_proto::google::r#type::Date>| date_of(d).ok().flatten();
        let start = if changing("start_date") {
            sent(&c.start_date)
        } else {
            current.start_date
        };
        let end = if changing("end_date") {
            sent(&c.end_date)
        } else {
            current.end_date
        };
        check_dates(start, end)?;
        if start.is_none() && campaign::needs_start_date(&current.status) {
            return Err(AiMarketingError::invalid(
                "campaign.start_date",
                format!("a {} campaign keeps its start date", current.status),
            ));
        }
        if changing("budget") || changing("currency_code") {
            let budget = if changing("budget") {
                budget(&c.budget).map_err(|e| AiMarketingError::invalid("campaign.budget", e))?
            } else {
                current.budget
            };
            let currency = if changing("currency_code") {
                c.currency_code.trim()
            } else {
                &current.currency
            };
            let metrics = compute_metrics(tx, current.id, budget, currency).await?;
            values.push(("metrics", Val::Json(metrics_json(&metrics)?)));
        }
        Ok(())
    }

    /// An active campaign is paused, completed or cancelled before it is deleted.
    async fn on_delete(
        _: &Call<'_, AppState>,
        _: &mut TenantTx,
        current: &CampaignRow,
    ) -> Result<(), AiMarketingError> {
        if current.status == campaign::ACTIVE {
            Err(AiMarketingError::CampaignStatus {
                id: current.id,
                status: current.status.clone(),
                action: "deleted",
                allowed: "draft, scheduled, paused, completed or cancelled",
            })
        } else {
            Ok(())
        }
    }
}

/// A budget: empty for none, else at least 0 with at most two decimals.
fn budget(raw: &str) -> Result<Option<Decimal>, String> {
    match parse_decimal(raw, 10, 2, None)? {
        Some(b) if b.is_sign_negative() && !b.is_zero() => Err("cannot be negative".into()),
        b => Ok(b),
    }
}

/// The end date is on or after the start date.
fn check_dates(start: Option<NaiveDate>, end: Option<NaiveDate>) -> Result<(), AiMarketingError> {
    match (start, end) {
        (Some(start), Some(end)) if end < start => Err(AiMarketingError::invalid(
            "campaign.end_date",
            format!("{end} is before the start date {start}"),
        )),
        _ => Ok(()),
    }
}

fn metrics_json(metrics: &Metrics) -> Result<serde_json::Value, AiMarketingError> {
    serde_json::to_value(metrics)
        .map_err(|_| AiMarketingError::Internal("metrics do not serialise"))
}

/// The metrics of campaign `id` with `budget` in `currency`, counted now.
async fn compute_metrics(
    tx: &mut TenantTx,
    id: i64,
    budget: Option<Decimal>,
    currency: &str,
) -> Result<Metrics, AiMarketingError> {
    let (targeted, converted, won, won_value): (i64, i64, i64, Decimal) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM ai_marketing.campaign_leads WHERE campaign_id = $1),
                (SELECT count(*) FROM ai_marketing.campaign_leads
                  WHERE campaign_id = $1 AND converted_at IS NOT NULL),
                (SELECT count(*) FROM ai_marketing.campaign_deals WHERE campaign_id = $1),
                (SELECT coalesce(sum(value), 0) FROM ai_marketing.campaign_deals
                  WHERE campaign_id = $1 AND currency = $2)",
    )
    .bind(id)
    .bind(currency)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Metrics::compute(
        budget,
        Counts {
            targeted,
            converted,
            won,
            won_value,
        },
    ))
}

/// Recomputes and stores the metrics of `current` (a row the transaction has locked
/// or read), leaving its version alone.
pub(crate) async fn refresh_metrics(
    tx: &mut TenantTx,
    current: &CampaignRow,
) -> Result<(), AiMarketingError> {
    let metrics = compute_metrics(tx, current.id, current.budget, &current.currency).await?;
    sqlx::query("UPDATE ai_marketing.campaigns SET metrics = $2 WHERE id = $1")
        .bind(current.id)
        .bind(sqlx::types::Json(metrics_json(&metrics)?))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Campaigns `ids`, deleted or not, locked against other changes until the
/// transaction ends (in id order, so two such transactions cannot deadlock): what
/// recording a lead's or deal's outcome for them needs before it recomputes their
/// metrics.
pub(crate) async fn lock_for_results(
    tx: &mut TenantTx,
    ids: &[i64],
) -> Result<Vec<CampaignRow>, AiMarketingError> {
    let sql = format!(
        "SELECT {SELECT} FROM ai_marketing.campaigns WHERE id = ANY($1) ORDER BY id \
         FOR NO KEY UPDATE"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .fetch_all(&mut **tx)
        .await?)
}

/// The live campaign `id`, share-locked until the transaction ends (its status cannot
/// change meanwhile, and it cannot be deleted), and refused when closed: what adding or
/// removing leads needs.
pub(crate) async fn open_for_leads(
    tx: &mut TenantTx,
    id: i64,
) -> Result<CampaignRow, AiMarketingError> {
    let sql = format!(
        "SELECT {SELECT} FROM ai_marketing.campaigns WHERE id = $1 AND deleted_at IS NULL FOR SHARE"
    );
    let row: Option<CampaignRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    let row = row.ok_or(AiMarketingError::NotFound {
        what: "campaign",
        id,
    })?;
    if campaign::closed(&row.status) {
        return Err(AiMarketingError::CampaignClosed {
            id,
            status: row.status,
            what: "leads".to_owned(),
        });
    }
    Ok(row)
}

/// The wire form of a stored campaign.
pub(crate) fn to_pb(kit: &Kit, r: CampaignRow) -> pb::Campaign {
    let metrics: Metrics = r
        .metrics
        .and_then(|m| serde_json::from_value(m).ok())
        .unwrap_or_default();
    let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    pb::Campaign {
        id: r.id,
        tenant_id: r.tenant_id,
        creator_user_id: r.user_id,
        name: r.name,
        description: r.description.unwrap_or_default(),
        r#type: r.kind,
        status: r.status,
        start_date: r.start_date.map(date_pb),
        end_date: r.end_date.map(date_pb),
        budget: r.budget.map(|b| places(b, 2)).unwrap_or_default(),
        currency_code: r.currency,
        metrics: Some(pb::CampaignMetrics {
            targeted_lead_count: count(metrics.targeted_lead_count),
            converted_lead_count: count(metrics.converted_lead_count),
            won_deal_count: count(metrics.won_deal_count),
            won_deal_value: if metrics.won_deal_value.is_empty() {
                "0.00".to_owned()
            } else {
                metrics.won_deal_value
            },
            cost_per_lead: metrics.cost_per_lead.unwrap_or_default(),
            cost_per_sale: metrics.cost_per_sale.unwrap_or_default(),
        }),
        tags: tags_of(r.tags.as_ref()),
        create_time: Some(ts(r.created_at)),
        update_time: Some(ts(r.updated_at)),
        delete_time: opt_ts(r.deleted_at),
        purge_time: kit.purge_time(r.deleted_at),
        etag: etag(r.version),
    }
}
