//! crm's catalogue of errors: every reason the context can give, in one enum, and the
//! one conversion to a gRPC [`Status`] (the error domain, [`DOMAIN`], attached here).
//!
//! `store/` and `domain/` return [`CrmError`]; only `grpc/` (and the kit's hooks, whose
//! signatures the shared kit fixes) turn it into a `Status`, with `?`. The reasons each
//! RPC can return are listed in its comment in `proto/fusion/crm/v1/`, after
//! `Reasons:`; a test below keeps the two lists in step.

use fusion_proto::errors::{self, FieldViolation};
use tonic::{Code, Status};

use crate::DOMAIN;

/// Every error crm gives.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    /// Fields of the request are malformed (INVALID_ARGUMENT with a `BadRequest`).
    #[error("invalid argument: {}", fields(.0))]
    Invalid(Vec<FieldViolation>),
    /// The record is missing, deleted or another tenant's (NOT_FOUND).
    #[error("{what} {id} not found")]
    NotFound {
        /// The kind of record (`lead`).
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// A lead or contact merged into another cannot be restored (MERGED).
    #[error("{what} {id} was merged into {what} {survivor}; it cannot be restored")]
    Merged {
        /// `lead` or `contact`.
        what: &'static str,
        /// The merged record.
        id: i64,
        /// The record it was merged into.
        survivor: i64,
    },
    /// The tenant's last live open lead status or deal stage cannot go (LAST_OPEN).
    #[error("{what} {id} is the tenant's last open one; add another first")]
    LastOpen {
        /// `lead status` or `deal stage`.
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// A lead needs a status and the tenant has no open one (NO_LEAD_STATUS).
    #[error("the tenant has no open lead status; create one first")]
    NoLeadStatus,
    /// The tenant has no deal stage with the outcome a deal needs (NO_OPEN_STAGE,
    /// NO_WON_STAGE, NO_LOST_STAGE).
    #[error("the tenant has no {0} deal stage; create one first")]
    NoStage(Outcome),
    /// A closed deal cannot be won, lost or changed so (DEAL_CLOSED).
    #[error(
        "deal {id} is already {status} (stage {stage}); it cannot be {action}. Reopen it with MoveDealStage first"
    )]
    DealClosed {
        /// The deal.
        id: i64,
        /// `won` or `lost`.
        status: String,
        /// The stage it closed in.
        stage: String,
        /// What the caller tried (`won`).
        action: String,
    },
    /// A deal moved to the open stage it is in (SAME_STAGE).
    #[error("deal {id} is already in stage {stage}; change its probability with UpdateDeal")]
    SameStage {
        /// The deal.
        id: i64,
        /// Its stage.
        stage: String,
    },
    /// Another live deal of the tenant with the same lot is won: a lot has one
    /// winner (LOT_ALREADY_WON).
    #[error("{}", lot_already_won(*.lot_id, *.won_deal_id))]
    LotAlreadyWon {
        /// The lot.
        lot_id: i64,
        /// The deal that won it, when known (the unique index alone does not say).
        won_deal_id: Option<i64>,
    },
    /// A completed task cannot be started or cancelled (TASK_COMPLETED).
    #[error("task {id} is completed; reopen it with ReopenTask to change its status")]
    TaskCompleted {
        /// The task.
        id: i64,
    },
    /// A cancelled task cannot be started or completed (TASK_CANCELLED).
    #[error("task {id} is cancelled; reopen it with ReopenTask to change its status")]
    TaskCancelled {
        /// The task.
        id: i64,
    },
    /// A lead is converted once (ALREADY_CONVERTED).
    #[error("lead {id} was already converted into contact {contact_id}")]
    AlreadyConverted {
        /// The lead.
        id: i64,
        /// The contact it became.
        contact_id: i64,
    },
    /// The united tags or custom fields of a merge exceed a record's limits
    /// (MERGE_TOO_LARGE).
    #[error(
        "the merged record would hold {tags} tags and {fields} custom fields (at most 50 and 100); trim them first"
    )]
    MergeTooLarge {
        /// Tags the survivor would hold.
        tags: i32,
        /// Custom fields the survivor would hold.
        fields: i32,
    },
    /// Identity or property could not answer a reference check (UNAVAILABLE).
    #[error("{owner} is not available to check {field}; try again")]
    OwnerUnavailable {
        /// `identity` or `property`.
        owner: &'static str,
        /// The request field being checked.
        field: String,
    },
    /// The caller lacks a permission this particular request needs beyond the method's
    /// own, which the server layer checks (ConvertLead asked for a deal; a note on a
    /// lead the caller may not read): PERMISSION_DENIED naming it, in the platform's
    /// domain like the server layer's.
    #[error("missing permission {permission}")]
    PermissionDenied {
        /// The permission needed (`crm.deals.write`).
        permission: &'static str,
    },
    /// Identity or property refused the caller a reference check (their
    /// PERMISSION_DENIED or UNAUTHENTICATED, passed on as it is).
    #[error("{}", .0.message())]
    OwnerRefused(Status),
    /// A fault of crm itself: logged, returned opaque (INTERNAL).
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// What the database layer reports (for crm: NOT_FOUND, INVALID_ARGUMENT,
    /// REQUEST_ID_REUSED, ALREADY_EXISTS, NOT_DELETED, ETAG_MISMATCH, CONCURRENT_UPDATE,
    /// UNAVAILABLE, INTERNAL).
    #[error(transparent)]
    Db(fusion_db::Error),
}

/// The message of [`CrmError::LotAlreadyWon`].
fn lot_already_won(lot_id: i64, won_deal_id: Option<i64>) -> String {
    let lot = if lot_id > 0 {
        format!("lot {lot_id}")
    } else {
        "its lot".to_owned()
    };
    match won_deal_id {
        Some(deal) => format!(
            "{lot} already has a won deal, deal {deal}; a lot is won once. Reopen or lose \
             deal {deal} first, or give this deal another lot"
        ),
        None => format!(
            "{lot} already has a won deal; a lot is won once. Reopen or lose that deal \
             first, or give this deal another lot"
        ),
    }
}

/// What the unique index on a lot's won deal (`deals_won_lot_key`) is reported as by
/// the database layer, which names a violated constraint by the field it protects.
const WON_LOT_TAKEN: &str = "won_lot already exists";

impl From<fusion_db::Error> for CrmError {
    /// The database layer's error; a second won deal on a lot that got past the
    /// checks (the unique index holds anyway) is LOT_ALREADY_WON, not ALREADY_EXISTS.
    fn from(err: fusion_db::Error) -> Self {
        match err.kind() {
            fusion_db::Kind::AlreadyExists { message, .. } if message == WON_LOT_TAKEN => {
                Self::LotAlreadyWon {
                    lot_id: 0,
                    won_deal_id: None,
                }
            }
            _ => Self::Db(err),
        }
    }
}

/// The outcome of a deal stage a deal needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Where deals start and move.
    Open,
    /// Where WinDeal closes a deal.
    Won,
    /// Where LoseDeal closes a deal.
    Lost,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Outcome {
    /// The outcome as stored (`open`, `won`, `lost`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Open => "open",
            Outcome::Won => "won",
            Outcome::Lost => "lost",
        }
    }
}

/// Every reason crm gives, its own and those of the database layer it passes on.
pub const REASONS: &[&str] = &[
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "MERGED",
    "LAST_OPEN",
    "NO_LEAD_STATUS",
    "NO_OPEN_STAGE",
    "NO_WON_STAGE",
    "NO_LOST_STAGE",
    "DEAL_CLOSED",
    "SAME_STAGE",
    "LOT_ALREADY_WON",
    "TASK_COMPLETED",
    "TASK_CANCELLED",
    "ALREADY_CONVERTED",
    "MERGE_TOO_LARGE",
    "UNAVAILABLE",
    "INTERNAL",
    // From the database layer. Not its HAS_CHILDREN (no crm resource has children that
    // block a delete) nor REFERENCE_NOT_FOUND (crm checks and locks what a row refers
    // to before writing it).
    "REQUEST_ID_REUSED",
    "ALREADY_EXISTS",
    "NOT_DELETED",
    "ETAG_MISMATCH",
    "CONCURRENT_UPDATE",
];

impl CrmError {
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

    /// The reason (`google.rpc.ErrorInfo.reason`) the error goes out with.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "INVALID_ARGUMENT",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::Merged { .. } => "MERGED",
            Self::LastOpen { .. } => "LAST_OPEN",
            Self::NoLeadStatus => "NO_LEAD_STATUS",
            Self::NoStage(Outcome::Open) => "NO_OPEN_STAGE",
            Self::NoStage(Outcome::Won) => "NO_WON_STAGE",
            Self::NoStage(Outcome::Lost) => "NO_LOST_STAGE",
            Self::DealClosed { .. } => "DEAL_CLOSED",
            Self::SameStage { .. } => "SAME_STAGE",
            Self::LotAlreadyWon { .. } => "LOT_ALREADY_WON",
            Self::TaskCompleted { .. } => "TASK_COMPLETED",
            Self::TaskCancelled { .. } => "TASK_CANCELLED",
            Self::AlreadyConverted { .. } => "ALREADY_CONVERTED",
            Self::MergeTooLarge { .. } => "MERGE_TOO_LARGE",
            Self::OwnerUnavailable { .. } => "UNAVAILABLE",
            Self::PermissionDenied { .. } => "PERMISSION_DENIED",
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

impl From<sqlx::Error> for CrmError {
    fn from(err: sqlx::Error) -> Self {
        Self::Db(fusion_db::Error::from_sqlx(DOMAIN, err))
    }
}

impl From<CrmError> for Status {
    fn from(err: CrmError) -> Status {
        let reason = err.reason();
        let message = err.to_string();
        match err {
            CrmError::Invalid(violations) => errors::invalid_argument(DOMAIN, violations),
            CrmError::NotFound { .. } => errors::not_found(DOMAIN, message),
            CrmError::Merged { .. }
            | CrmError::LastOpen { .. }
            | CrmError::NoLeadStatus
            | CrmError::NoStage(_)
            | CrmError::DealClosed { .. }
            | CrmError::SameStage { .. }
            | CrmError::TaskCompleted { .. }
            | CrmError::TaskCancelled { .. }
            | CrmError::AlreadyConverted { .. }
            | CrmError::MergeTooLarge { .. } => {
                errors::failed_precondition(DOMAIN, reason, message)
            }
            CrmError::LotAlreadyWon {
                lot_id,
                won_deal_id,
            } => lot_already_won_status(reason, lot_id, won_deal_id, message),
            CrmError::OwnerUnavailable { .. } => errors::unavailable(DOMAIN, message),
            CrmError::PermissionDenied { permission } => errors::permission_denied(permission),
            CrmError::OwnerRefused(status) => status,
            CrmError::Internal(cause) => {
                tracing::error!(cause, "internal error");
                errors::internal(DOMAIN)
            }
            CrmError::Db(e) => e.into_status_in(DOMAIN),
        }
    }
}

/// FAILED_PRECONDITION whose ErrorInfo carries the lot and the deal that won it (as
/// `lot_id` and `won_deal_id` metadata) and whose PreconditionFailure names that deal
/// as its subject (`deals/<id>`).
fn lot_already_won_status(
    reason: &str,
    lot_id: i64,
    won_deal_id: Option<i64>,
    message: String,
) -> Status {
    use tonic_types::{ErrorDetails, StatusExt as _};
    let mut metadata = std::collections::HashMap::new();
    if lot_id > 0 {
        metadata.insert("lot_id".to_owned(), lot_id.to_string());
    }
    let subject = match won_deal_id {
        Some(deal) => {
            metadata.insert("won_deal_id".to_owned(), deal.to_string());
            format!("deals/{deal}")
        }
        None => DOMAIN.to_owned(),
    };
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, DOMAIN, metadata);
    details.add_precondition_failure_violation(reason, subject, message.clone());
    Status::with_error_details(Code::FailedPrecondition, message, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed_in_the_proto_comments_and_every_listed_one_is_in_the_enum() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto/fusion/crm/v1");
        fusion_testkit::reasons::assert_catalogue_matches(&dir, REASONS);
    }

    #[test]
    fn a_second_winner_the_unique_index_caught_is_lot_already_won() {
        let index = fusion_db::Error::new(
            DOMAIN,
            fusion_db::Kind::AlreadyExists {
                reason: "ALREADY_EXISTS",
                message: WON_LOT_TAKEN.to_owned(),
            },
        );
        let status = Status::from(CrmError::from(index));
        assert_eq!(status.code(), Code::FailedPrecondition);
        let info = tonic_types::StatusExt::get_details_error_info(&status).unwrap();
        assert_eq!(info.reason, "LOT_ALREADY_WON");
        let other = fusion_db::Error::new(
            DOMAIN,
            fusion_db::Kind::AlreadyExists {
                reason: "ALREADY_EXISTS",
                message: "key already exists".to_owned(),
            },
        );
        assert_eq!(CrmError::from(other).reason(), "ALREADY_EXISTS");
    }

    #[test]
    fn a_lot_already_won_names_the_winner_in_its_details() {
        let status = Status::from(CrmError::LotAlreadyWon {
            lot_id: 12,
            won_deal_id: Some(9),
        });
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("deal 9"), "{status:?}");
        let info = tonic_types::StatusExt::get_details_error_info(&status).unwrap();
        assert_eq!(
            (
                info.metadata["lot_id"].as_str(),
                info.metadata["won_deal_id"].as_str()
            ),
            ("12", "9")
        );
        let failure = tonic_types::StatusExt::get_details_precondition_failure(&status).unwrap();
        assert_eq!(failure.violations[0].subject, "deals/9");
        assert_eq!(failure.violations[0].r#type, "LOT_ALREADY_WON");
    }

    #[test]
    fn every_variant_reason_is_in_the_catalogue() {
        let samples = [
            CrmError::invalid("f", "bad"),
            CrmError::NotFound {
                what: "lead",
                id: 1,
            },
            CrmError::Merged {
                what: "lead",
                id: 1,
                survivor: 2,
            },
            CrmError::LastOpen {
                what: "deal stage",
                id: 1,
            },
            CrmError::NoLeadStatus,
            CrmError::NoStage(Outcome::Open),
            CrmError::NoStage(Outcome::Won),
            CrmError::NoStage(Outcome::Lost),
            CrmError::DealClosed {
                id: 1,
                status: "won".into(),
                stage: "s".into(),
                action: "lost".into(),
            },
            CrmError::SameStage {
                id: 1,
                stage: "s".into(),
            },
            CrmError::LotAlreadyWon {
                lot_id: 12,
                won_deal_id: Some(9),
            },
            CrmError::TaskCompleted { id: 1 },
            CrmError::TaskCancelled { id: 1 },
            CrmError::AlreadyConverted {
                id: 1,
                contact_id: 2,
            },
            CrmError::MergeTooLarge {
                tags: 51,
                fields: 0,
            },
            CrmError::OwnerUnavailable {
                owner: "identity",
                field: "assignee_user_id".into(),
            },
            CrmError::Internal("test"),
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
}
