//! The gRPC surface of finance: one module per service, the method policy, and what
//! every handler shares. Proto types stop here.

mod commissions;
mod invoices;
mod plans;
mod settings;
mod xero;

use tonic::service::Routes;
use tonic::{Request, Response, Status};

use fusion_proto::finance::v1::{
    commission_plan_service_server::CommissionPlanServiceServer,
    commission_service_server::CommissionServiceServer,
    invoice_service_server::InvoiceServiceServer, settings_service_server::SettingsServiceServer,
    xero_service_server::XeroServiceServer,
};
use fusion_tenancy::{MethodPolicy, TenantContext};

use crate::AppState;

/// The one implementation of every finance service (one `impl` per service, in its
/// module).
#[derive(Clone, Debug)]
pub(crate) struct FinanceApi {
    state: AppState,
}

/// Every finance service, ready to serve.
pub fn routes(state: &AppState) -> Routes {
    let api = FinanceApi {
        state: state.clone(),
    };
    Routes::new(fusion_service::limited!(InvoiceServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(SettingsServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(CommissionPlanServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(CommissionServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(XeroServiceServer::new(api)))
}

/// The permissions every finance RPC needs; the one place to read them. Invoices,
/// their Xero sync, the Xero connection and the finance settings are
/// `finance.invoices.*`; commissions and commission plans are `finance.commissions.*`.
/// Reads need `.read`, every other method `.write`.
pub fn policy() -> MethodPolicy {
    let services: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "InvoiceService",
            "invoices",
            &["GetInvoice", "ListInvoices"],
            &[
                "CreateInvoice",
                "UpdateInvoice",
                "DeleteInvoice",
                "UndeleteInvoice",
                "SubmitInvoice",
                "ApproveInvoice",
                "VoidInvoice",
                "RecordPayment",
                "SyncInvoiceToXero",
            ],
        ),
        (
            "SettingsService",
            "invoices",
            &["GetFinanceSettings"],
            &["UpdateFinanceSettings"],
        ),
        (
            "XeroService",
            "invoices",
            &["GetXeroConnection"],
            &[
                "StartXeroConnection",
                "CompleteXeroConnection",
                "DisconnectXero",
            ],
        ),
        (
            "CommissionPlanService",
            "commissions",
            &["GetCommissionPlan", "ListCommissionPlans"],
            &[
                "CreateCommissionPlan",
                "UpdateCommissionPlan",
                "DeleteCommissionPlan",
                "UndeleteCommissionPlan",
            ],
        ),
        (
            "CommissionService",
            "commissions",
            &["GetCommission", "ListCommissions", "SummarizeCommissions"],
            &[
                "CreateCommission",
                "UpdateCommission",
                "DeleteCommission",
                "UndeleteCommission",
                "ApproveCommission",
                "MarkCommissionPaid",
            ],
        ),
    ];
    let mut policy = MethodPolicy::new();
    for (service, resource, reads, writes) in services {
        for method in *reads {
            policy = policy.require(
                &format!("/fusion.finance.v1.{service}/{method}"),
                &format!("finance.{resource}.read"),
            );
        }
        for method in *writes {
            policy = policy.require(
                &format!("/fusion.finance.v1.{service}/{method}"),
                &format!("finance.{resource}.write"),
            );
        }
    }
    policy
}

/// A request's verified caller and its message.
pub(crate) fn parts<T>(req: Request<T>) -> Result<(TenantContext, T), Status> {
    let ctx = TenantContext::from_request(&req)?;
    Ok((ctx, req.into_inner()))
}

/// A handler's answer: the message, or the error as a status.
pub(crate) fn reply<T, E: Into<Status>>(result: Result<T, E>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Into::into)
}
