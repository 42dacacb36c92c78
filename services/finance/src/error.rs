//! finance's catalogue of errors: every reason the context can give, in one enum, and
//! the one conversion to a gRPC [`Status`] (the error domain, [`DOMAIN`], attached
//! here).
//!
//! `store/` and `domain/` return [`FinanceError`]; only `grpc/` (and the kit's hooks)
//! turn it into a `Status`. The reasons each RPC can return are listed in its comment
//! in `proto/fusion/finance/v1/`, after `Reasons:`; a test below keeps the two lists in
//! step.

use std::time::Duration;

use fusion_proto::errors::{self, FieldViolation};
use tonic::{Code, Status};

use crate::DOMAIN;

/// Every error finance gives.
#[derive(Debug, thiserror::Error)]
pub enum FinanceError {
    /// Fields of the request are malformed (INVALID_ARGUMENT with a `BadRequest`).
    #[error("invalid argument: {}", fields(.0))]
    Invalid(Vec<FieldViolation>),
    /// The record is missing, deleted or another tenant's (NOT_FOUND).
    #[error("{what} {id} not found")]
    NotFound {
        /// The kind of record (`invoice`).
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// An invoice's lines, amounts, dates or parties change only while it is draft or
    /// submitted (INVOICE_LOCKED).
    #[error("invoice {id} is {status}; its {field} change only while it is draft or submitted")]
    InvoiceLocked {
        /// The invoice.
        id: i64,
        /// Its status.
        status: String,
        /// What the caller tried to change.
        field: String,
    },
    /// The invoice's status does not allow the step (INVOICE_STATUS).
    #[error("invoice {id} is {status}; it can be {action} only when {allowed}")]
    InvoiceStatus {
        /// The invoice.
        id: i64,
        /// Its status.
        status: String,
        /// What the caller tried (`approved`).
        action: &'static str,
        /// The statuses that allow it (`submitted`).
        allowed: &'static str,
    },
    /// An invoice with payments cannot be voided (INVOICE_HAS_PAYMENTS).
    #[error("invoice {id} has {paid} paid; an invoice with payments cannot be voided")]
    InvoiceHasPayments {
        /// The invoice.
        id: i64,
        /// What has been paid.
        paid: String,
    },
    /// A payment above what is due (OVERPAYMENT).
    #[error("a payment of {amount} is more than the {due} due on invoice {id}")]
    Overpayment {
        /// The invoice.
        id: i64,
        /// The payment.
        amount: String,
        /// What is due.
        due: String,
    },
    /// The commission's status does not allow the step (COMMISSION_STATUS).
    #[error("commission {id} is {status}; it can be {action} only when {allowed}")]
    CommissionStatus {
        /// The commission.
        id: i64,
        /// Its status.
        status: String,
        /// What the caller tried (`approved`).
        action: &'static str,
        /// The statuses that allow it (`payable`).
        allowed: &'static str,
    },
    /// Xero's client credentials are not configured (XERO_NOT_CONFIGURED).
    #[error("Xero is not configured: set {0}")]
    XeroNotConfigured(String),
    /// The tenant has not connected Xero (XERO_NOT_CONNECTED).
    #[error("this tenant has not connected Xero; connect it with StartXeroConnection")]
    XeroNotConnected,
    /// Xero refused the request as it is (XERO_REJECTED).
    #[error("Xero refused the request: {0}")]
    XeroRejected(String),
    /// Xero's rate limit for the tenant is reached (XERO_RATE_LIMITED).
    #[error("Xero's rate limit for this organisation is reached; retry in {} s", .retry_after.as_secs())]
    XeroRateLimited {
        /// When to retry.
        retry_after: Duration,
    },
    /// Xero did not answer (XERO_UNAVAILABLE).
    #[error("Xero is not available: {0}")]
    XeroUnavailable(String),
    /// Identity, crm or property could not answer a reference check (UNAVAILABLE).
    #[error("{owner} is not available to check {field}; try again")]
    OwnerUnavailable {
        /// `identity`, `crm` or `property`.
        owner: &'static str,
        /// The request field being checked.
        field: String,
    },
    /// The owner of a reference refused the caller (their PERMISSION_DENIED or
    /// UNAUTHENTICATED, passed on as it is).
    #[error("{}", .0.message())]
    OwnerRefused(Status),
    /// A fault of finance itself: logged, returned opaque (INTERNAL).
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// What the database layer reports.
    #[error(transparent)]
    Db(#[from] fusion_db::Error),
}

/// Every reason finance gives, its own and those of the database layer it passes on.
pub const REASONS: &[&str] = &[
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "INVOICE_LOCKED",
    "INVOICE_STATUS",
    "INVOICE_HAS_PAYMENTS",
    "OVERPAYMENT",
    "COMMISSION_STATUS",
    "XERO_NOT_CONFIGURED",
    "XERO_NOT_CONNECTED",
    "XERO_REJECTED",
    "XERO_RATE_LIMITED",
    "XERO_UNAVAILABLE",
    "UNAVAILABLE",
    "INTERNAL",
    // From the database layer.
    "REQUEST_ID_REUSED",
    "ALREADY_EXISTS",
    "NOT_DELETED",
    "ETAG_MISMATCH",
    "CONCURRENT_UPDATE",
];

impl FinanceError {
    /// INVALID_ARGUMENT for one field.
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldViolation::new(field, description)])
    }

    /// INVALID_ARGUMENT from collected violations, or Ok when there are none.
    pub fn check(violations: Vec<FieldViolation>) -> Result<(), Self> {
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Self::Invalid(violations))
        }
    }

    /// The error as an event consumer reports it. A database error stays one, and an
    /// owner that could not answer becomes one that is unavailable: the consumer then
    /// retries until it answers, without counting the failures against the event (an
    /// outage is not the event's fault and must not dead-letter it). Anything else
    /// counts, and is dead-lettered after the consumer's deliveries.
    pub fn into_event_error(self) -> anyhow::Error {
        match self {
            Self::Db(e) => e.into(),
            Self::OwnerUnavailable { owner, field } => anyhow::Error::new(fusion_db::Error::new(
                DOMAIN,
                fusion_db::Kind::Unavailable("a context finance asks is not available", None),
            ))
            .context(format!("{owner} could not answer for {field}")),
            other => other.into(),
        }
    }

    /// The reason (`google.rpc.ErrorInfo.reason`) the error goes out with.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "INVALID_ARGUMENT",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::InvoiceLocked { .. } => "INVOICE_LOCKED",
            Self::InvoiceStatus { .. } => "INVOICE_STATUS",
            Self::InvoiceHasPayments { .. } => "INVOICE_HAS_PAYMENTS",
            Self::Overpayment { .. } => "OVERPAYMENT",
            Self::CommissionStatus { .. } => "COMMISSION_STATUS",
            Self::XeroNotConfigured(_) => "XERO_NOT_CONFIGURED",
            Self::XeroNotConnected => "XERO_NOT_CONNECTED",
            Self::XeroRejected(_) => "XERO_REJECTED",
            Self::XeroRateLimited { .. } => "XERO_RATE_LIMITED",
            Self::XeroUnavailable(_) => "XERO_UNAVAILABLE",
            Self::OwnerUnavailable { .. } => "UNAVAILABLE",
            Self::OwnerRefused(status) => match status.code() {
                Code::PermissionDenied => "PERMISSION_DENIED",
                _ => "UNAUTHENTICATED",
            },
            Self::Internal(_) => "INTERNAL",
            Self::Db(e) => db_reason(e.kind()),
        }
    }
}

/// The reason the database layer's error goes out with.
fn db_reason(kind: &fusion_db::error::Kind) -> &'static str {
    use fusion_db::error::Kind;
    match kind {
        Kind::NotFound(_) => "NOT_FOUND",
        Kind::Invalid(_) => "INVALID_ARGUMENT",
        Kind::InvalidBecause(reason, _) => reason,
        Kind::AlreadyExists { reason, .. }
        | Kind::Precondition { reason, .. }
        | Kind::Aborted { reason, .. } => reason,
        Kind::NoTenant => "TENANT_MISSING",
        Kind::Unavailable(..) => "UNAVAILABLE",
        Kind::Internal(_) => "INTERNAL",
    }
}

fn fields(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| v.field.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<sqlx::Error> for FinanceError {
    fn from(err: sqlx::Error) -> Self {
        Self::Db(fusion_db::Error::from_sqlx(DOMAIN, err))
    }
}

impl From<FinanceError> for Status {
    fn from(err: FinanceError) -> Status {
        let reason = err.reason();
        let message = err.to_string();
        match err {
            FinanceError::Invalid(violations) => errors::invalid_argument(DOMAIN, violations),
            FinanceError::NotFound { .. } => errors::not_found(DOMAIN, message),
            FinanceError::InvoiceLocked { .. }
            | FinanceError::InvoiceStatus { .. }
            | FinanceError::InvoiceHasPayments { .. }
            | FinanceError::Overpayment { .. }
            | FinanceError::CommissionStatus { .. }
            | FinanceError::XeroNotConfigured(_)
            | FinanceError::XeroNotConnected
            | FinanceError::XeroRejected(_) => errors::failed_precondition(DOMAIN, reason, message),
            FinanceError::XeroRateLimited { retry_after } => {
                use tonic_types::{ErrorDetails, StatusExt as _};
                let mut details = ErrorDetails::new();
                details.set_error_info(reason, DOMAIN, std::collections::HashMap::new());
                details.set_retry_info(Some(retry_after));
                Status::with_error_details(Code::ResourceExhausted, message, details)
            }
            FinanceError::XeroUnavailable(_) => {
                use tonic_types::{ErrorDetails, StatusExt as _};
                let mut details = ErrorDetails::new();
                details.set_error_info(reason, DOMAIN, std::collections::HashMap::new());
                Status::with_error_details(Code::Unavailable, message, details)
            }
            FinanceError::OwnerUnavailable { .. } => errors::unavailable(DOMAIN, message),
            FinanceError::OwnerRefused(status) => status,
            FinanceError::Internal(cause) => {
                tracing::error!(cause, "internal error");
                errors::internal(DOMAIN)
            }
            FinanceError::Db(e) => e.into_status_in(DOMAIN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed_in_the_proto_comments_and_every_listed_one_is_in_the_enum() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto/fusion/finance/v1");
        fusion_testkit::reasons::assert_catalogue_matches(&dir, REASONS);
    }

    #[test]
    fn every_variant_goes_out_with_its_reason_in_finance_s_domain() {
        let samples = [
            FinanceError::invalid("f", "bad"),
            FinanceError::NotFound {
                what: "invoice",
                id: 1,
            },
            FinanceError::InvoiceLocked {
                id: 1,
                status: "authorised".into(),
                field: "line_items".into(),
            },
            FinanceError::InvoiceStatus {
                id: 1,
                status: "draft".into(),
                action: "approved",
                allowed: "submitted",
            },
            FinanceError::InvoiceHasPayments {
                id: 1,
                paid: "1.00".into(),
            },
            FinanceError::Overpayment {
                id: 1,
                amount: "2.00".into(),
                due: "1.00".into(),
            },
            FinanceError::CommissionStatus {
                id: 1,
                status: "pending".into(),
                action: "approved",
                allowed: "payable",
            },
            FinanceError::XeroNotConfigured("FINANCE_XERO_CLIENT_ID".into()),
            FinanceError::XeroNotConnected,
            FinanceError::XeroRejected("bad".into()),
            FinanceError::XeroRateLimited {
                retry_after: Duration::from_secs(3),
            },
            FinanceError::XeroUnavailable("down".into()),
            FinanceError::OwnerUnavailable {
                owner: "crm",
                field: "invoice.deal_id".into(),
            },
            FinanceError::Internal("test"),
        ];
        for err in samples {
            let reason = err.reason();
            assert!(REASONS.contains(&reason), "{reason} is not in REASONS");
            let status = Status::from(err);
            let info = tonic_types::StatusExt::get_details_error_info(&status).unwrap();
            assert_eq!(
                (info.reason.as_str(), info.domain.as_str()),
                (reason, DOMAIN)
            );
        }
    }

    #[test]
    fn an_event_waits_out_an_owner_or_database_outage_but_not_its_own_fault() {
        let unavailable = |err: FinanceError| {
            err.into_event_error().chain().any(|cause| {
                cause
                    .downcast_ref::<fusion_db::Error>()
                    .is_some_and(|e| matches!(e.kind(), fusion_db::Kind::Unavailable(..)))
            })
        };
        assert!(unavailable(FinanceError::OwnerUnavailable {
            owner: "property",
            field: "lot_id".into(),
        }));
        assert!(unavailable(FinanceError::Db(fusion_db::Error::new(
            DOMAIN,
            fusion_db::Kind::Unavailable("database unavailable", None),
        ))));
        assert!(!unavailable(FinanceError::invalid("lot_id", "no lot 3")));
        assert!(!unavailable(FinanceError::Internal("test")));
    }

    #[test]
    fn a_rate_limit_carries_its_retry_delay() {
        let status = Status::from(FinanceError::XeroRateLimited {
            retry_after: Duration::from_secs(7),
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = tonic_types::StatusExt::get_details_retry_info(&status).unwrap();
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(7)));
    }
}
