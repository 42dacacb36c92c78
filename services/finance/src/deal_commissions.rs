//! A won deal's commissions, and what becomes of them when the deal is lost or
//! reopened: finance's consumer of crm's deal events (`finance-deal-commissions`).
//!
//! - `crm.deal.won`: the plan that applies to the deal — its lot's project's plan,
//!   else the tenant's default — gives one commission per line, recipient and
//!   milestone, the parts of each line summing exactly to its total
//!   (`crate::domain::commission`). They start pending, except those whose milestone
//!   the deal has reached: `won` at once, and any lot milestone property already
//!   announced (`property.lot.status_changed` may overtake the win: see
//!   `crate::lot_milestones`). A deal without a value, or a tenant without a plan
//!   that applies, gets none. The lot's project is asked of property as finance's
//!   system account in the tenant, and only when the tenant has a plan for some
//!   project at all.
//! - `crm.deal.lost`, and `crm.deal.reopened` from won: the deal's commissions not yet
//!   paid are cancelled, and each paid one gets a negative clawback.
//!
//! One consumer receives the three types (`fusion.crm.deal.*`), so one deal's events
//! are applied in the order crm committed them. Each runs in the event's tenant with
//! its inbox row in the same transaction (`fusion-events`), and a winning's
//! commissions carry the event's id under a unique index: a redelivery, or the same
//! win retried, creates one set.

use std::time::Duration;

use rust_decimal::Decimal;

use fusion_db::TenantTx;
use fusion_events::{Delivery, Handler};
use fusion_proto::crm::v1::{DealLost, DealReopened, DealWon};
use fusion_tenancy::TenantContext;

use crate::domain::commission::Basis;
use crate::domain::currency::Currency;
use crate::domain::money::MONEY;
use crate::error::FinanceError;
use crate::refs::Refs;
use crate::store::commissions::{PlanPart, Win, insert_win, take_back};
use crate::store::plans::{PlanRow, has_project_plans, plan_for};

/// The durable consumer's name (and its inbox rows').
pub const CONSUMER: &str = "finance-deal-commissions";

/// The events it receives.
pub const EVENTS: &[&str] = &[WON, LOST, REOPENED];

const WON: &str = "crm.deal.won";
const LOST: &str = "crm.deal.lost";
const REOPENED: &str = "crm.deal.reopened";

/// How long property is given to say which project a lot is in.
const PROPERTY_TIMEOUT: Duration = Duration::from_secs(5);

/// Handles crm's deal events.
#[derive(Clone, Debug)]
pub struct DealCommissions {
    /// Property, for a won deal's lot's project.
    pub refs: Refs,
}

impl Handler for DealCommissions {
    async fn handle(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        match event.envelope.event_type.as_str() {
            WON => self.won(tx, event).await,
            LOST => {
                let lost: DealLost = event.payload()?;
                anyhow::ensure!(lost.deal_id > 0, "deal_id must be a positive id");
                take_back_commissions(tx, lost.deal_id, "lost").await
            }
            REOPENED => {
                let reopened: DealReopened = event.payload()?;
                anyhow::ensure!(reopened.deal_id > 0, "deal_id must be a positive id");
                if reopened.previous_status == "won" {
                    take_back_commissions(tx, reopened.deal_id, "reopened").await
                } else {
                    tracing::debug!(deal_id = reopened.deal_id, previous = %reopened.previous_status,
                        "a deal reopened without having been won: no commissions to take back");
                    Ok(())
                }
            }
            other => anyhow::bail!("{CONSUMER} does not handle {other}"),
        }
    }
}

impl DealCommissions {
    /// Creates the commissions of a won deal's plan.
    async fn won(&self, tx: &mut TenantTx, event: &Delivery) -> anyhow::Result<()> {
        let won = WonDeal::read(&event.payload::<DealWon>()?)?;
        let Some(value) = won.value else {
            tracing::info!(
                deal_id = won.deal_id,
                "a deal won without a value: no commissions"
            );
            return Ok(());
        };
        let project = if won.lot_id > 0
            && has_project_plans(tx)
                .await
                .map_err(FinanceError::into_event_error)?
        {
            self.lot_project(event, won.lot_id).await?
        } else {
            None
        };
        let Some(plan) = plan_for(tx, project)
            .await
            .map_err(FinanceError::into_event_error)?
        else {
            tracing::info!(
                deal_id = won.deal_id,
                project_id = project,
                "no commission plan applies to a won deal: no commissions"
            );
            return Ok(());
        };
        let parts = plan_parts(&plan, value, won.currency)?;
        let win = Win {
            deal_id: won.deal_id,
            event_id: uuid::Uuid::parse_str(&event.envelope.event_id)?,
            plan_id: plan.id,
            currency: won.currency.code(),
        };
        let inserted = insert_win(tx, &win, &parts)
            .await
            .map_err(FinanceError::into_event_error)?;
        tracing::info!(
            deal_id = won.deal_id,
            plan_id = plan.id,
            inserted,
            "commissions of a won deal created"
        );
        Ok(())
    }

    /// The project of lot `lot_id`, asked of property as finance's system account in
    /// the event's tenant; none when property has no such lot (the default plan then
    /// applies). Without service credentials finance cannot ask, and the event fails.
    async fn lot_project(&self, event: &Delivery, lot_id: i64) -> anyhow::Result<Option<i64>> {
        let Some(caller) = &event.caller else {
            anyhow::bail!(
                "finance has no service credentials (FINANCE_SERVICE_CLIENT_SECRET), so it \
                 cannot ask property for the project of lot {lot_id}, whose plan may apply"
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
            PROPERTY_TIMEOUT,
            as_system.scope(self.refs.lot_project("lot_id", lot_id)),
        )
        .await
        .unwrap_or_else(|_| {
            Err(FinanceError::OwnerUnavailable {
                owner: "property",
                field: "lot_id".to_owned(),
            })
        });
        match asked {
            Ok(project) => Ok(Some(project)),
            Err(FinanceError::Invalid(_)) => {
                tracing::warn!(
                    lot_id,
                    "property has no lot of a won deal: its default plan applies"
                );
                Ok(None)
            }
            Err(other) => Err(other.into_event_error()),
        }
    }
}

/// Cancels and claws back deal `deal_id`'s commissions, the deal having been `why`.
async fn take_back_commissions(tx: &mut TenantTx, deal_id: i64, why: &str) -> anyhow::Result<()> {
    let taken = take_back(tx, deal_id, why)
        .await
        .map_err(FinanceError::into_event_error)?;
    tracing::info!(
        deal_id,
        why,
        cancelled = taken.cancelled,
        clawed_back = taken.clawed_back,
        "commissions of a deal no longer won taken back"
    );
    Ok(())
}

/// A `DealWon` payload, checked (it comes from another context).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WonDeal {
    /// The deal.
    pub deal_id: i64,
    /// Its lot; 0 when none.
    pub lot_id: i64,
    /// Its value; none when the deal has none.
    pub value: Option<Decimal>,
    /// Its currency (AUD when crm named none).
    pub currency: Currency,
}

impl WonDeal {
    /// Checks `payload`: ids positive (the lot's 0 when none), a value that is empty
    /// or a non-negative `decimal(12,2)` in the currency's minor units, a currency
    /// finance can hold.
    pub fn read(payload: &DealWon) -> anyhow::Result<Self> {
        anyhow::ensure!(payload.deal_id > 0, "deal_id must be a positive id");
        anyhow::ensure!(
            payload.lot_id >= 0,
            "lot_id must be a positive id, or 0 for none"
        );
        let code = match payload.currency_code.trim() {
            "" => "AUD",
            code => code,
        };
        let currency =
            Currency::parse(code).map_err(|e| anyhow::anyhow!("currency_code {code:?}: {e}"))?;
        let value = match payload.value.trim() {
            "" => None,
            raw => {
                let value = MONEY
                    .parse(raw)
                    .map_err(|e| anyhow::anyhow!("value {raw:?}: {e}"))?;
                anyhow::ensure!(value >= Decimal::ZERO, "value must not be negative");
                currency
                    .check_places(value)
                    .map_err(|e| anyhow::anyhow!("value {raw:?}: {e}"))?;
                Some(value)
            }
        };
        Ok(Self {
            deal_id: payload.deal_id,
            lot_id: payload.lot_id,
            value,
            currency,
        })
    }
}

/// The commissions `plan` gives a deal worth `value` in `currency`: each line's parts,
/// lines in order, each described.
pub(crate) fn plan_parts(
    plan: &PlanRow,
    value: Decimal,
    currency: Currency,
) -> anyhow::Result<Vec<PlanPart>> {
    let mut parts = Vec::new();
    for (index, stored) in plan.lines.0.iter().enumerate() {
        let line = stored.to_line()?;
        let position = i32::try_from(index)?;
        let rate = match line.basis() {
            Basis::Rate(rate) => Some(rate),
            Basis::Fixed(_) => None,
        };
        let total = line.total(value, currency);
        for part in line.commissions(value, currency)? {
            let share = line
                .recipients()
                .iter()
                .find(|r| r.user_id == part.user_id)
                .map_or(Decimal::ZERO, |r| r.share);
            let percent = line
                .milestones()
                .iter()
                .find(|m| m.milestone == part.milestone)
                .map_or(Decimal::ZERO, |m| m.percent);
            parts.push(PlanPart {
                line: position,
                commission_type: line.commission_type(),
                rate,
                user_id: part.user_id,
                milestone: part.milestone,
                amount: part.amount,
                description: format!(
                    "{plan}, line {n} ({kind}, {total} {code}): a {share} % share, {percent} % at {milestone}",
                    plan = plan.name,
                    n = index + 1,
                    kind = line.commission_type(),
                    code = currency.code(),
                    share = share.normalize(),
                    percent = percent.normalize(),
                    milestone = part.milestone,
                ),
            });
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn won(value: &str, currency: &str) -> DealWon {
        DealWon {
            deal_id: 12,
            lot_id: 34,
            value: value.into(),
            currency_code: currency.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_won_deal_is_read_with_its_value_and_currency() {
        let read = WonDeal::read(&won("549000.00", "NZD")).unwrap();
        assert_eq!(read.value, Some("549000.00".parse().unwrap()));
        assert_eq!(read.currency.code(), "NZD");
        assert_eq!(WonDeal::read(&won("", "")).unwrap().value, None);
        assert_eq!(WonDeal::read(&won("1", "")).unwrap().currency.code(), "AUD");
    }

    #[test]
    fn a_plan_gives_each_lines_exact_parts_in_order_each_described() {
        let lines = serde_json::json!([
            {
                "commission_type": "sales_agent",
                "rate": "2.00",
                "recipients": [{ "user_id": 7, "share": "70" }, { "user_id": 8, "share": "30" }],
                "milestones": [{ "milestone": "exchanged", "percent": "50" },
                               { "milestone": "settled", "percent": "50" }],
            },
            {
                "commission_type": "bdm",
                "fixed_amount": "0.01",
                "recipients": [{ "user_id": 1, "share": "33.33" }, { "user_id": 2, "share": "33.33" },
                               { "user_id": 3, "share": "33.34" }],
                "milestones": [{ "milestone": "won", "percent": "100" }],
            },
        ]);
        let now = chrono::Utc::now();
        let plan = PlanRow {
            id: 3,
            tenant_id: 1,
            name: "Standard".into(),
            project_id: None,
            lines: sqlx::types::Json(serde_json::from_value(lines).unwrap()),
            description: None,
            version: 1,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        let aud = Currency::parse("AUD").unwrap();
        let parts = plan_parts(&plan, "549000.00".parse().unwrap(), aud).unwrap();
        let found: Vec<(i32, i64, &str, String, Option<String>)> = parts
            .iter()
            .map(|p| {
                (
                    p.line,
                    p.user_id,
                    p.milestone.as_str(),
                    p.amount.to_string(),
                    p.rate.map(|r| r.to_string()),
                )
            })
            .collect();
        let rate = || Some("2.00".to_owned());
        assert_eq!(
            found,
            [
                (0, 7, "exchanged", "3843.00".to_owned(), rate()),
                (0, 7, "settled", "3843.00".to_owned(), rate()),
                (0, 8, "exchanged", "1647.00".to_owned(), rate()),
                (0, 8, "settled", "1647.00".to_owned(), rate()),
                (1, 1, "won", "0.00".to_owned(), None),
                (1, 2, "won", "0.00".to_owned(), None),
                (1, 3, "won", "0.01".to_owned(), None),
            ]
        );
        assert_eq!(
            parts[0].description,
            "Standard, line 1 (sales_agent, 10980.00 AUD): a 70 % share, 50 % at exchanged"
        );
        assert_eq!(
            parts[6].description,
            "Standard, line 2 (bdm, 0.01 AUD): a 33.34 % share, 100 % at won"
        );
    }

    #[test]
    fn a_malformed_win_is_refused() {
        for bad in [
            DealWon {
                deal_id: 0,
                ..won("1.00", "AUD")
            },
            DealWon {
                lot_id: -1,
                ..won("1.00", "AUD")
            },
            won("-1.00", "AUD"),
            won("1.005", "AUD"),
            won("1e3", "AUD"),
            won("100.50", "JPY"),
            won("1.00", "KWD"),
            won("1.00", "XYZ"),
        ] {
            assert!(WonDeal::read(&bad).is_err(), "{bad:?}");
        }
    }
}
