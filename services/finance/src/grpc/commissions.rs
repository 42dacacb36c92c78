//! `fusion.finance.v1.CommissionService`: the standard methods (on the shared kit, see
//! `crate::store::commissions`), the two status steps a person takes — approve a
//! payable commission, record an approved one paid — each a custom method that locks
//! the commission, checks its status and is replayed on a retry with the same request
//! id, and the totals by recipient, type, status and currency over a date range.

use chrono::{NaiveDate, Utc};
use tonic::{Request, Response, Status};

use fusion_db::TenantTx;
use fusion_db::list::ListParams;
use fusion_db::resource::Val;
use fusion_proto::errors::FieldViolation;
use fusion_proto::finance::v1 as pb;
use fusion_proto::finance::v1::commission_service_server::CommissionService;
use fusion_proto::google::r#type::Date;
use fusion_service::api::{parse_date, total};
use fusion_service::custom::lock;
use fusion_service::standard;

use crate::error::FinanceError;
use crate::grpc::{FinanceApi, parts, reply};
use crate::store::commissions::{
    APPROVED, CommissionRow, Commissions, PAID, PAYABLE, total_pb, totals,
};

/// The longest range SummarizeCommissions totals, in days after its first.
const MAX_SUMMARY_DAYS: i64 = 3_660;

#[tonic::async_trait]
impl CommissionService for FinanceApi {
    async fn create_commission(
        &self,
        req: Request<pb::CreateCommissionRequest>,
    ) -> Result<Response<pb::Commission>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let commission = r.commission.unwrap_or_default();
        reply(standard::create::<Commissions>(&self.state, &ctx, key, commission).await)
    }

    async fn get_commission(
        &self,
        req: Request<pb::GetCommissionRequest>,
    ) -> Result<Response<pb::Commission>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::get::<Commissions>(&self.state, &ctx, r.id).await)
    }

    async fn list_commissions(
        &self,
        req: Request<pb::ListCommissionsRequest>,
    ) -> Result<Response<pb::ListCommissionsResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let page = standard::list::<Commissions>(&self.state, &ctx, &params, None).await?;
        Ok(Response::new(pb::ListCommissionsResponse {
            commissions: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_commission(
        &self,
        req: Request<pb::UpdateCommissionRequest>,
    ) -> Result<Response<pb::Commission>, Status> {
        let (ctx, r) = parts(req)?;
        let commission = r.commission.unwrap_or_default();
        reply(standard::update::<Commissions>(&self.state, &ctx, commission, r.update_mask).await)
    }

    async fn delete_commission(
        &self,
        req: Request<pb::DeleteCommissionRequest>,
    ) -> Result<Response<pb::Commission>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::delete::<Commissions>(&self.state, &ctx, r.id, &r.etag).await)
    }

    async fn undelete_commission(
        &self,
        req: Request<pb::UndeleteCommissionRequest>,
    ) -> Result<Response<pb::Commission>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::undelete::<Commissions>(&self.state, &ctx, r.id).await)
    }

    async fn approve_commission(
        &self,
        req: Request<pb::ApproveCommissionRequest>,
    ) -> Result<Response<pb::Commission>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let approve = async |_: &mut TenantTx, current: &CommissionRow| {
            if current.status != PAYABLE {
                return Err(FinanceError::CommissionStatus {
                    id: current.id,
                    status: current.status.clone(),
                    action: "approved",
                    allowed: PAYABLE,
                });
            }
            Ok(vec![
                ("status", Val::text(APPROVED)),
                ("approved_at", Val::Timestamp(Some(Utc::now()))),
            ])
        };
        let result = async {
            lock::<Commissions>(&self.state, &ctx, "ApproveCommission", key, r.id, &r.etag)
                .await?
                .set(&self.state, r.id, approve)
                .await
        };
        reply(result.await)
    }

    async fn mark_commission_paid(
        &self,
        req: Request<pb::MarkCommissionPaidRequest>,
    ) -> Result<Response<pb::Commission>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let payment_date =
            date_of("payment_date", r.payment_date.as_ref())?.unwrap_or_else(|| ctx.today());
        let pay = async |_: &mut TenantTx, current: &CommissionRow| {
            if current.status != APPROVED {
                return Err(FinanceError::CommissionStatus {
                    id: current.id,
                    status: current.status.clone(),
                    action: "marked paid",
                    allowed: APPROVED,
                });
            }
            Ok(vec![
                ("status", Val::text(PAID)),
                ("payment_date", Val::Date(Some(payment_date))),
            ])
        };
        let result = async {
            lock::<Commissions>(&self.state, &ctx, "MarkCommissionPaid", key, r.id, &r.etag)
                .await?
                .set(&self.state, r.id, pay)
                .await
        };
        reply(result.await)
    }

    async fn summarize_commissions(
        &self,
        req: Request<pb::SummarizeCommissionsRequest>,
    ) -> Result<Response<pb::SummarizeCommissionsResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let (first, last) = summary_range(r.start_date.as_ref(), r.end_date.as_ref())?;
        let recipient = match r.recipient_user_id {
            0 => None,
            id if id > 0 => Some(id),
            _ => {
                return Err(FinanceError::invalid(
                    "recipient_user_id",
                    "must be a positive id, or 0 for every recipient",
                )
                .into());
            }
        };
        let result = async {
            let mut tx = self.state.db.begin(ctx.tenant_id).await?;
            let rows = totals(&mut tx, first, last, ctx.time_zone, recipient).await?;
            tx.commit().await?;
            Ok::<_, FinanceError>(pb::SummarizeCommissionsResponse {
                totals: rows.into_iter().map(total_pb).collect(),
            })
        };
        reply(result.await)
    }
}

/// A `google.type.Date` sent in `field`; unset (or all zero) is none.
fn date_of(field: &str, date: Option<&Date>) -> Result<Option<NaiveDate>, FinanceError> {
    match date {
        Some(d) => parse_date(d.year, d.month, d.day).map_err(|e| FinanceError::invalid(field, e)),
        None => Ok(None),
    }
}

/// The first and last day SummarizeCommissions totals: both required, the last on or
/// after the first and at most [`MAX_SUMMARY_DAYS`] after it.
fn summary_range(
    start: Option<&Date>,
    end: Option<&Date>,
) -> Result<(NaiveDate, NaiveDate), FinanceError> {
    let mut problems = Vec::new();
    let mut required = |field: &str, date: Option<&Date>| match date_of(field, date) {
        Ok(Some(d)) => Some(d),
        Ok(None) => {
            problems.push(FieldViolation::new(field, "is required"));
            None
        }
        Err(FinanceError::Invalid(found)) => {
            problems.extend(found);
            None
        }
        Err(_) => None,
    };
    let (first, last) = (required("start_date", start), required("end_date", end));
    let (Some(first), Some(last)) = (first, last) else {
        return Err(FinanceError::Invalid(problems));
    };
    let days = (last - first).num_days();
    if days < 0 {
        return Err(FinanceError::invalid(
            "end_date",
            format!("{last} is before start_date {first}"),
        ));
    }
    if days > MAX_SUMMARY_DAYS {
        return Err(FinanceError::invalid(
            "end_date",
            format!("at most {MAX_SUMMARY_DAYS} days after start_date ({days} days)"),
        ));
    }
    Ok((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: i32, month: i32, day: i32) -> Date {
        Date { year, month, day }
    }

    fn fields(err: FinanceError) -> Vec<String> {
        match err {
            FinanceError::Invalid(v) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn a_summary_range_is_two_dates_in_order_at_most_3660_days_apart() {
        let (jan, dec) = (date(2026, 1, 1), date(2026, 12, 31));
        assert_eq!(
            summary_range(Some(&jan), Some(&dec)).unwrap(),
            (
                NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
            )
        );
        assert!(summary_range(Some(&jan), Some(&jan)).is_ok());
        assert_eq!(
            fields(summary_range(None, Some(&date(0, 0, 0))).unwrap_err()),
            ["start_date", "end_date"]
        );
        assert_eq!(
            fields(summary_range(Some(&date(2026, 2, 30)), Some(&dec)).unwrap_err()),
            ["start_date"]
        );
        assert_eq!(
            fields(summary_range(Some(&dec), Some(&jan)).unwrap_err()),
            ["end_date"]
        );
        // 2026-01-01 + 3660 days = 2036-01-09.
        assert!(summary_range(Some(&jan), Some(&date(2036, 1, 9))).is_ok());
        assert_eq!(
            fields(summary_range(Some(&jan), Some(&date(2036, 1, 10))).unwrap_err()),
            ["end_date"]
        );
    }
}
