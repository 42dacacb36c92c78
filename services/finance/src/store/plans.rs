//! Commission plans: their row, their description for the standard methods, and the
//! plan a won deal's commissions come from.
//!
//! A plan's lines are one JSON document (`finance.commission_plans.lines`), validated
//! with `crate::domain::commission` before they are written and read back through the
//! same rules, so a stored plan always yields exact commissions. The recipients are
//! checked with identity as the caller and the project with property; a second live
//! plan for a project (or a second default, project 0) is refused by the unique index
//! `commission_plans_tenant_id_project_id_key`, which the error names as `project_id`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;

use fusion_db::TenantTx;
use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::{Table, Val, Values};
use fusion_proto::errors::FieldViolation;
use fusion_proto::finance::v1 as pb;
use fusion_service::api::{etag, opt_ts, populated, ts};
use fusion_service::standard::{Call, Kit, Method, Resource};
use fusion_service::validate;

use crate::domain::commission::{
    Basis, CommissionType, Milestone, MilestoneShare, PlanLine, RawPlanLine, Recipient,
    parse_plan_lines,
};
use crate::error::FinanceError;
use crate::store::invoices::two_places;
use crate::store::{values_of, violations};
use crate::{AppState, DOMAIN};

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "finance.commission_plans",
    select: SELECT,
    what: "commission plan",
};

const SELECT: &str = "id, tenant_id, name, project_id, lines, description, version, created_at, \
    updated_at, deleted_at";

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("name", "name", FieldKind::Text),
    // The default plan has no project: 0 on the wire.
    FieldSpec::new("project_id", "coalesce(project_id, 0)", FieldKind::Int),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
    FieldSpec::new("update_time", "updated_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["name", "create_time", "update_time"],
    default_order: "name",
    soft_delete: true,
    tenant_scoped: true,
};

/// What Update may change.
const MUTABLE: &[&str] = &["name", "lines", "description"];

/// What Create sets.
const CREATE: &[&str] = &["name", "project_id", "lines", "description"];

#[derive(sqlx::FromRow)]
pub(crate) struct PlanRow {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub project_id: Option<i64>,
    pub lines: Json<Vec<StoredLine>>,
    pub description: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(PlanRow);

/// A plan line as stored: decimals as strings (`"2.00"`, `"70"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredLine {
    pub commission_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_amount: Option<Decimal>,
    pub recipients: Vec<StoredRecipient>,
    pub milestones: Vec<StoredMilestone>,
}

/// A stored recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredRecipient {
    pub user_id: i64,
    pub share: Decimal,
}

/// A stored milestone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredMilestone {
    pub milestone: String,
    pub percent: Decimal,
}

impl StoredLine {
    /// The stored form of a valid line: a rate or fixed amount with two decimals,
    /// shares and percentages without trailing zeros.
    fn of(line: &PlanLine) -> StoredLine {
        let (rate, fixed_amount) = match line.basis() {
            Basis::Rate(rate) => (Some(two(rate)), None),
            Basis::Fixed(amount) => (None, Some(two(amount))),
        };
        StoredLine {
            commission_type: line.commission_type().as_str().to_owned(),
            rate,
            fixed_amount,
            recipients: line
                .recipients()
                .iter()
                .map(|r| StoredRecipient {
                    user_id: r.user_id,
                    share: r.share.normalize(),
                })
                .collect(),
            milestones: line
                .milestones()
                .iter()
                .map(|m| StoredMilestone {
                    milestone: m.milestone.as_str().to_owned(),
                    percent: m.percent.normalize(),
                })
                .collect(),
        }
    }

    /// The line, held to the rules it was written under.
    pub(crate) fn to_line(&self) -> Result<PlanLine, FinanceError> {
        let corrupt = || FinanceError::Internal("a stored commission plan line breaks its rules");
        let commission_type =
            CommissionType::parse(&self.commission_type).map_err(|_| corrupt())?;
        let basis = match (self.rate, self.fixed_amount) {
            (Some(rate), None) => Basis::Rate(rate),
            (None, Some(amount)) => Basis::Fixed(amount),
            _ => return Err(corrupt()),
        };
        let recipients: Vec<Recipient> = self
            .recipients
            .iter()
            .map(|r| Recipient {
                user_id: r.user_id,
                share: r.share,
            })
            .collect();
        let milestones = self
            .milestones
            .iter()
            .map(|m| {
                Milestone::parse(&m.milestone).map(|milestone| MilestoneShare {
                    milestone,
                    percent: m.percent,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| corrupt())?;
        PlanLine::new(commission_type, basis, &recipients, &milestones).map_err(|_| corrupt())
    }
}

/// `d` written with exactly two decimals.
fn two(mut d: Decimal) -> Decimal {
    d.rescale(2);
    d
}

/// Commission plans on the standard methods: lines validated as a whole, recipients
/// checked with identity and the project with property, as the caller.
pub(crate) struct Plans;

impl Resource for Plans {
    type Row = PlanRow;
    type Pb = pb::CommissionPlan;
    type State = AppState;
    type Error = FinanceError;

    const SINGULAR: &'static str = "CommissionPlan";
    const FIELD: &'static str = "commission_plan";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = CREATE;
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = &["project_id"];

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: PlanRow) -> pb::CommissionPlan {
        to_pb(&state.kit, r)
    }

    fn id(p: &pb::CommissionPlan) -> i64 {
        p.id
    }

    fn etag(p: &pb::CommissionPlan) -> &str {
        &p.etag
    }

    fn populated(p: &pb::CommissionPlan) -> Vec<&'static str> {
        populated(&[
            ("name", !p.name.is_empty()),
            ("lines", !p.lines.is_empty()),
            ("description", !p.description.is_empty()),
        ])
    }

    /// Every field checked, the lines as a whole: each problem is named by its path
    /// (`commission_plan.lines[0].recipients[1].share`).
    fn values(
        _: &AppState,
        p: &pb::CommissionPlan,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, FinanceError> {
        let simple = values_of("commission_plan", fields, |field| {
            Ok(Some(match field {
                "name" => {
                    validate::required(&p.name, 255)?;
                    ("name", Val::text(&p.name))
                }
                "project_id" => match p.project_id {
                    0 => ("project_id", Val::Int(None)),
                    id if id > 0 => ("project_id", Val::Int(Some(id))),
                    _ => return Err("must be a positive id, or 0 for the default plan".into()),
                },
                "description" => {
                    validate::max_len(&p.description, 10_000)?;
                    ("description", Val::text(&p.description))
                }
                _ => return Ok(None),
            }))
        });
        let lines = if fields.contains(&"lines") {
            Some(stored_lines(&p.lines))
        } else {
            None
        };
        match (simple, lines) {
            (Ok(mut values), Some(Ok(lines))) => {
                values.push(("lines", Val::Json(lines)));
                Ok(values)
            }
            (Ok(values), None) => Ok(values),
            (Err(FinanceError::Invalid(mut found)), Some(Err(FinanceError::Invalid(more)))) => {
                found.extend(more);
                Err(FinanceError::Invalid(found))
            }
            (Err(e), _) | (Ok(_), Some(Err(e))) => Err(e),
        }
    }

    /// Checks the project with property and the recipients with identity.
    async fn on_create(
        call: &Call<'_, AppState>,
        _: &mut TenantTx,
        p: &pb::CommissionPlan,
        _: &mut Values,
    ) -> Result<(), FinanceError> {
        if p.project_id > 0 {
            call.state
                .refs
                .project("commission_plan.project_id", p.project_id)
                .await?;
        }
        check_recipients(call, &p.lines).await
    }

    /// Checks new lines' recipients with identity.
    async fn on_update(
        call: &Call<'_, AppState>,
        _: &mut TenantTx,
        _: &PlanRow,
        p: &pb::CommissionPlan,
        _: &mut Values,
    ) -> Result<(), FinanceError> {
        if call.fields.contains(&"lines") {
            check_recipients(call, &p.lines).await?;
        }
        Ok(())
    }
}

/// The lines sent, validated, as the JSON document stored.
fn stored_lines(lines: &[pb::CommissionPlanLine]) -> Result<serde_json::Value, FinanceError> {
    let raw: Vec<RawPlanLine<'_>> = lines
        .iter()
        .map(|l| RawPlanLine {
            commission_type: l.commission_type.trim(),
            rate: l.rate.trim(),
            fixed_amount: l.fixed_amount.trim(),
            recipients: l
                .recipients
                .iter()
                .map(|r| (r.user_id, r.share.trim()))
                .collect(),
            milestones: l
                .milestones
                .iter()
                .map(|m| (m.milestone.trim(), m.percent.trim()))
                .collect(),
        })
        .collect();
    let parsed = parse_plan_lines(&raw).map_err(|p| violations("commission_plan", p))?;
    let stored: Vec<StoredLine> = parsed.iter().map(StoredLine::of).collect();
    serde_json::to_value(stored).map_err(|_| FinanceError::Internal("plan lines as JSON"))
}

/// Checks every recipient of `lines` with identity, as the caller: each user once,
/// named by the first place it appears; every user that is not an active user of the
/// caller's tenant is reported.
async fn check_recipients(
    call: &Call<'_, AppState>,
    lines: &[pb::CommissionPlanLine],
) -> Result<(), FinanceError> {
    let mut seen = std::collections::HashSet::new();
    let mut problems: Vec<FieldViolation> = Vec::new();
    for (l, line) in lines.iter().enumerate() {
        for (r, recipient) in line.recipients.iter().enumerate() {
            if !seen.insert(recipient.user_id) {
                continue;
            }
            let field = format!("commission_plan.lines[{l}].recipients[{r}].user_id");
            match call.state.refs.user(&field, recipient.user_id).await {
                Ok(()) => {}
                Err(FinanceError::Invalid(found)) => problems.extend(found),
                Err(other) => return Err(other),
            }
        }
    }
    FinanceError::check(problems)
}

/// The wire form of a stored plan.
pub(crate) fn to_pb(kit: &Kit, r: PlanRow) -> pb::CommissionPlan {
    pb::CommissionPlan {
        id: r.id,
        tenant_id: r.tenant_id,
        name: r.name,
        project_id: r.project_id.unwrap_or_default(),
        lines: r
            .lines
            .0
            .into_iter()
            .map(|l| pb::CommissionPlanLine {
                commission_type: l.commission_type,
                rate: l.rate.map(two_places).unwrap_or_default(),
                fixed_amount: l.fixed_amount.map(two_places).unwrap_or_default(),
                recipients: l
                    .recipients
                    .into_iter()
                    .map(|r| pb::CommissionRecipient {
                        user_id: r.user_id,
                        share: r.share.normalize().to_string(),
                    })
                    .collect(),
                milestones: l
                    .milestones
                    .into_iter()
                    .map(|m| pb::CommissionMilestone {
                        milestone: m.milestone,
                        percent: m.percent.normalize().to_string(),
                    })
                    .collect(),
            })
            .collect(),
        description: r.description.unwrap_or_default(),
        create_time: Some(ts(r.created_at)),
        update_time: Some(ts(r.updated_at)),
        delete_time: opt_ts(r.deleted_at),
        purge_time: kit.purge_time(r.deleted_at),
        etag: etag(r.version),
    }
}

/// The live plan a won deal of the transaction's tenant is paid under: the plan of
/// `project` when it has one, else the default plan; none when neither exists.
pub(crate) async fn plan_for(
    tx: &mut TenantTx,
    project: Option<i64>,
) -> Result<Option<PlanRow>, FinanceError> {
    let sql = format!(
        "SELECT {SELECT} FROM finance.commission_plans
          WHERE deleted_at IS NULL AND (project_id = $1 OR project_id IS NULL)
          ORDER BY project_id NULLS LAST LIMIT 1"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(project)
        .fetch_optional(&mut **tx)
        .await?)
}

/// Whether the transaction's tenant has a live plan for some project (else every deal
/// is paid under the default plan, whatever its lot).
pub(crate) async fn has_project_plans(tx: &mut TenantTx) -> Result<bool, FinanceError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM finance.commission_plans
                         WHERE deleted_at IS NULL AND project_id IS NOT NULL)",
    )
    .fetch_one(&mut **tx)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn a_stored_line_reads_back_as_the_line_it_was_written_from() {
        let raw = RawPlanLine {
            commission_type: "sales_agent",
            rate: "2",
            fixed_amount: "",
            recipients: vec![(7, "70.00"), (8, "30")],
            milestones: vec![("exchanged", "50"), ("settled", "50.0")],
        };
        let line = PlanLine::parse(&raw).unwrap();
        let stored = StoredLine::of(&line);
        assert_eq!(stored.rate, Some(d("2.00")));
        assert_eq!(stored.rate.unwrap().to_string(), "2.00");
        assert_eq!(stored.recipients[0].share.to_string(), "70");
        assert_eq!(stored.milestones[1].percent.to_string(), "50");
        let json = serde_json::to_value(&stored).unwrap();
        assert_eq!(json["rate"], "2.00");
        assert!(json.get("fixed_amount").is_none());
        let back: StoredLine = serde_json::from_value(json).unwrap();
        assert_eq!(back.to_line().unwrap(), line);
    }

    #[test]
    fn a_stored_line_that_breaks_the_rules_is_an_internal_fault() {
        let mut stored = StoredLine::of(
            &PlanLine::parse(&RawPlanLine {
                commission_type: "bdm",
                rate: "",
                fixed_amount: "100",
                recipients: vec![(1, "100")],
                milestones: vec![("won", "100")],
            })
            .unwrap(),
        );
        stored.recipients[0].share = d("90");
        assert!(matches!(stored.to_line(), Err(FinanceError::Internal(_))));
        stored.recipients[0].share = d("100");
        stored.rate = Some(d("2"));
        assert!(matches!(stored.to_line(), Err(FinanceError::Internal(_))));
    }
}
