//! `fusion.finance.v1.InvoiceService`: the standard methods (on the shared kit) and the
//! status steps — submit, approve, void, record a payment — each a custom method that
//! locks the invoice, checks the step against its status and is replayed on a retry
//! with the same request id. An approval taken now (not replayed) is then pushed to
//! Xero when the tenant asks for it; `SyncInvoiceToXero` pushes on request (both in
//! `crate::xero_sync::push`).

use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use fusion_db::TenantTx;
use fusion_db::list::ListParams;
use fusion_db::resource::Val;
use fusion_proto::finance::v1 as pb;
use fusion_proto::finance::v1::invoice_service_server::InvoiceService;
use fusion_service::api::{parse_date, total};
use fusion_service::custom::{Locked, lock, write};
use fusion_service::{standard, validate};

use crate::domain::currency::Currency;
use crate::domain::money::MONEY;
use crate::error::FinanceError;
use crate::grpc::{FinanceApi, parts, reply};
use crate::store::invoices::{
    AUTHORISED, DRAFT, InvoiceRow, Invoices, NewPayment, SUBMITTED, VOIDED, record_payment,
};

/// A status step: the status it needs, the one it leads to, and what it is called.
struct Step {
    method: &'static str,
    from: &'static str,
    to: &'static str,
    action: &'static str,
}

const SUBMIT: Step = Step {
    method: "SubmitInvoice",
    from: DRAFT,
    to: SUBMITTED,
    action: "submitted",
};

const APPROVE: Step = Step {
    method: "ApproveInvoice",
    from: SUBMITTED,
    to: AUTHORISED,
    action: "approved",
};

const VOID: Step = Step {
    method: "VoidInvoice",
    from: AUTHORISED,
    to: VOIDED,
    action: "voided",
};

impl FinanceApi {
    /// Moves invoice `id` one `step`, refusing a status the step does not start from
    /// (and, to void, an invoice with payments). The answer says whether the step was
    /// taken now (false: a retry replayed the first call's answer).
    async fn step(
        &self,
        req_ctx: &fusion_tenancy::TenantContext,
        step: &Step,
        key: Option<fusion_db::idempotency::RequestKey>,
        id: i64,
        etag: &str,
    ) -> Result<(pb::Invoice, bool), FinanceError> {
        let next = async |_: &mut TenantTx, current: &InvoiceRow| {
            if current.status != step.from {
                return Err(FinanceError::InvoiceStatus {
                    id: current.id,
                    status: current.status.clone(),
                    action: step.action,
                    allowed: step.from,
                });
            }
            if step.to == VOIDED && current.amount_paid > Decimal::ZERO {
                return Err(FinanceError::InvoiceHasPayments {
                    id: current.id,
                    paid: current.amount_paid.to_string(),
                });
            }
            Ok(vec![("status", Val::text(step.to))])
        };
        let locked = lock::<Invoices>(&self.state, req_ctx, step.method, key, id, etag).await?;
        let fresh = matches!(locked, Locked::Fresh(..));
        let invoice = locked.set(&self.state, id, next).await?;
        Ok((invoice, fresh))
    }
}

#[tonic::async_trait]
impl InvoiceService for FinanceApi {
    async fn create_invoice(
        &self,
        req: Request<pb::CreateInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let invoice = r.invoice.unwrap_or_default();
        reply(standard::create::<Invoices>(&self.state, &ctx, key, invoice).await)
    }

    async fn get_invoice(
        &self,
        req: Request<pb::GetInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::get::<Invoices>(&self.state, &ctx, r.id).await)
    }

    async fn list_invoices(
        &self,
        req: Request<pb::ListInvoicesRequest>,
    ) -> Result<Response<pb::ListInvoicesResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let page = standard::list::<Invoices>(&self.state, &ctx, &params, None).await?;
        Ok(Response::new(pb::ListInvoicesResponse {
            invoices: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_invoice(
        &self,
        req: Request<pb::UpdateInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let (ctx, r) = parts(req)?;
        let invoice = r.invoice.unwrap_or_default();
        reply(standard::update::<Invoices>(&self.state, &ctx, invoice, r.update_mask).await)
    }

    async fn delete_invoice(
        &self,
        req: Request<pb::DeleteInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::delete::<Invoices>(&self.state, &ctx, r.id, &r.etag).await)
    }

    async fn undelete_invoice(
        &self,
        req: Request<pb::UndeleteInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::undelete::<Invoices>(&self.state, &ctx, r.id).await)
    }

    async fn submit_invoice(
        &self,
        req: Request<pb::SubmitInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        reply(
            self.step(&ctx, &SUBMIT, key, r.id, &r.etag)
                .await
                .map(|(invoice, _)| invoice),
        )
    }

    async fn approve_invoice(
        &self,
        req: Request<pb::ApproveInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let (approved, fresh) = self.step(&ctx, &APPROVE, key, r.id, &r.etag).await?;
        if !fresh {
            return Ok(Response::new(approved));
        }
        Ok(Response::new(
            crate::xero_sync::push::after_approval(&self.state, &ctx, approved).await,
        ))
    }

    async fn void_invoice(
        &self,
        req: Request<pb::VoidInvoiceRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        reply(
            self.step(&ctx, &VOID, key, r.id, &r.etag)
                .await
                .map(|(invoice, _)| invoice),
        )
    }

    async fn record_payment(
        &self,
        req: Request<pb::RecordPaymentRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let mut problems = Vec::new();
        let amount = match MONEY.parse(&r.amount) {
            Ok(a) if a > Decimal::ZERO => Some(a),
            Ok(_) => {
                problems.push(("amount", "must be above zero".to_owned()));
                None
            }
            Err(e) => {
                problems.push(("amount", e));
                None
            }
        };
        let date = match &r.payment_date {
            Some(d) => parse_date(d.year, d.month, d.day).unwrap_or_else(|e| {
                problems.push(("payment_date", e));
                None
            }),
            None => None,
        };
        if let Err(e) = validate::max_len(&r.reference, 255) {
            problems.push(("reference", e));
        }
        if !problems.is_empty() {
            return Err(FinanceError::Invalid(
                problems
                    .into_iter()
                    .map(|(f, m)| fusion_proto::errors::FieldViolation::new(f, m))
                    .collect(),
            )
            .into());
        }
        let amount = amount.unwrap_or_default();
        let payment = NewPayment {
            amount,
            payment_date: date.unwrap_or_else(|| ctx.today()),
            reference: &r.reference,
            xero_payment_id: None,
            user_id: Some(ctx.user_id),
        };
        let result = async {
            let (mut tx, current) =
                match lock::<Invoices>(&self.state, &ctx, "RecordPayment", key, r.id, &r.etag)
                    .await?
                {
                    Locked::Replayed(invoice) => return Ok(invoice),
                    Locked::Fresh(tx, current) => (tx, current),
                };
            let currency = Currency::parse(&current.currency)
                .map_err(|_| FinanceError::Internal("a stored invoice has an unknown currency"))?;
            currency
                .check_places(amount)
                .map_err(|e| FinanceError::invalid("amount", e))?;
            record_payment(&mut tx, &current, &payment).await?;
            let row = write::<Invoices>(&mut tx, r.id, Vec::new()).await?;
            let invoice = crate::store::invoices::to_pb(&self.state.kit, row);
            Ok::<_, FinanceError>(tx.commit(invoice).await?)
        };
        reply(result.await)
    }

    async fn sync_invoice_to_xero(
        &self,
        req: Request<pb::SyncInvoiceToXeroRequest>,
    ) -> Result<Response<pb::Invoice>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        reply(crate::xero_sync::push::sync_invoice(&self.state, &ctx, key, r.id).await)
    }
}
