//! Every reason property can give, in one list, and the one conversion to a gRPC
//! status.
//!
//! Below [`crate::grpc`] nothing builds a `Status`: the store, the stock SQL, the
//! domain and the housekeeping job return a [`PropertyError`] (or the database layer's
//! own [`fusion_db::Error`]), and a handler or kit hook turns it into a `Status` with
//! `?`, which attaches the domain `property.fusion` here, once. Internal causes are
//! logged here and returned opaque.
//!
//! [`REASONS`] lists every reason a property error can carry, including those the
//! database layer and the standard-methods kit raise on property's behalf; the reasons
//! each RPC can return are listed in its proto comment, and a test keeps the two the
//! same.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use fusion_db::error::Kind;
use fusion_proto::errors::{self, FieldViolation};

use crate::DOMAIN;
use crate::domain::lifecycle::{LotStatus, Refused};

/// The reasons property raises itself, by name (the kit's parent refusals name theirs
/// when a resource declares its parent).
pub(crate) mod reason {
    /// An undelete under a deleted project.
    pub const PROJECT_DELETED: &str = "PROJECT_DELETED";
    /// An undelete under a deleted stage.
    pub const STAGE_DELETED: &str = "STAGE_DELETED";
}

/// Every reason a property error carries in the domain `property.fusion`: its own, the
/// lifecycle's refusals (`LOT_` and the status the lot is in), and those of the
/// database layer and the standard methods.
pub const REASONS: &[&str] = &[
    // Generic.
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "UNAVAILABLE",
    "INTERNAL",
    // The standard methods and the database layer.
    "REQUEST_ID_REUSED",
    "ALREADY_EXISTS",
    "NOT_DELETED",
    "REFERENCE_NOT_FOUND",
    "HAS_CHILDREN",
    "ETAG_MISMATCH",
    "CONCURRENT_UPDATE",
    reason::PROJECT_DELETED,
    reason::STAGE_DELETED,
    // Property's own.
    "DEVELOPER_DELETED",
    "HAS_MEDIA",
    "PARENT_DELETED",
    "LOT_SOLD",
    "LOT_AVAILABLE",
    "LOT_HOLD",
    "LOT_RESERVED",
    "LOT_EXCHANGED",
    "LOT_UNCONDITIONAL",
    "LOT_SETTLED",
    "LOT_WITHDRAWN",
    "WATCH_LAGGED",
    "DATA_LOSS",
    "DEAL_CLOSED",
    "LOT_HELD_FOR_ANOTHER_DEAL",
];

/// Why a property request failed.
#[derive(Debug, thiserror::Error)]
pub enum PropertyError {
    /// Fields of the request are malformed (INVALID_ARGUMENT, one violation per field).
    #[error("invalid argument")]
    Invalid(Vec<FieldViolation>),
    /// `what` (`lot`) `id` is missing, deleted or another tenant's: they look the same.
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// A lot under contract cannot be deleted (`LOT_SOLD`).
    #[error("a lot that is {status} cannot be deleted; revert it first")]
    LotSold {
        /// The lot's status.
        status: LotStatus,
    },
    /// The lifecycle does not allow the transition from the lot's status
    /// (`LOT_<STATUS>`).
    #[error(transparent)]
    Refused(#[from] Refused),
    /// A project, stage or lot that still has live media cannot be deleted
    /// (`HAS_MEDIA`).
    #[error("{mediable_type} {id} still has media; delete it first")]
    HasMedia {
        /// `project`, `stage` or `lot`.
        mediable_type: &'static str,
        /// Its id.
        id: i64,
    },
    /// Media cannot be restored while the record it belongs to is deleted
    /// (`PARENT_DELETED`).
    #[error("the {mediable_type} media item {media_id} belongs to is deleted; undelete it first")]
    ParentDeleted {
        /// `project`, `stage` or `lot`.
        mediable_type: String,
        /// The media item.
        media_id: i64,
    },
    /// A project cannot be restored while its developer is deleted
    /// (`DEVELOPER_DELETED`).
    #[error("developer {developer_id} is deleted; undelete it first")]
    DeveloperDeleted {
        /// The developer.
        developer_id: i64,
    },
    /// A watcher fell too far behind the live feed (`WATCH_LAGGED`); it re-lists and
    /// watches again.
    #[error("the watcher fell {missed} events behind; list the lots and watch again")]
    WatchLagged {
        /// How many events it missed.
        missed: u64,
    },
    /// The media store cannot be reached now (`UNAVAILABLE`); worth a retry.
    #[error("the media store is not available; try again")]
    MediaStore(#[source] object_store::Error),
    /// A media item's stored object cannot be read (`INTERNAL`, logged).
    #[error("internal error")]
    MediaUnreadable {
        /// The media item.
        media_id: i64,
        /// Why.
        #[source]
        source: object_store::Error,
    },
    /// The bytes stored for a media item are not the bytes uploaded (`DATA_LOSS`).
    #[error("the stored file does not match its checksum")]
    ChecksumMismatch {
        /// The media item.
        media_id: i64,
    },
    /// The deal a hold or reservation is for is won or lost (`DEAL_CLOSED`).
    #[error("deal_id: deal {deal_id} is {status}; a lot is held or reserved only for an open deal")]
    DealClosed {
        /// The deal.
        deal_id: i64,
        /// Its status in crm.
        status: String,
    },
    /// The lot is held for another deal, which must release it first
    /// (`LOT_HELD_FOR_ANOTHER_DEAL`).
    #[error("lot {lot_id} is held for deal {deal_id}; release it first")]
    LotHeldForAnotherDeal {
        /// The lot.
        lot_id: i64,
        /// The deal it is held for.
        deal_id: i64,
    },
    /// Crm could not answer a check of `field` (UNAVAILABLE); worth a retry.
    #[error("crm is not available to check {field}; try again")]
    CrmUnavailable {
        /// The request field being checked.
        field: &'static str,
    },
    /// Crm refused the caller a check (its PERMISSION_DENIED or UNAUTHENTICATED,
    /// passed on as it is).
    #[error("{}", .0.message())]
    CrmRefused(Status),
    /// A fault of property's own (`INTERNAL`, logged).
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// What the database layer reports.
    #[error(transparent)]
    Db(#[from] fusion_db::Error),
}

impl PropertyError {
    /// INVALID_ARGUMENT for one field.
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldViolation::new(field, description)])
    }

    /// NOT_FOUND for `what` `id`.
    pub fn not_found(what: &'static str, id: i64) -> Self {
        Self::NotFound { what, id }
    }

    /// The reason this error carries (UPPER_SNAKE_CASE; one of [`REASONS`], or a
    /// platform reason such as `TENANT_MISSING` from the database layer).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "INVALID_ARGUMENT",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::LotSold { .. } => "LOT_SOLD",
            Self::Refused(refused) => refused_reason(refused.from),
            Self::HasMedia { .. } => "HAS_MEDIA",
            Self::ParentDeleted { .. } => "PARENT_DELETED",
            Self::DeveloperDeleted { .. } => "DEVELOPER_DELETED",
            Self::WatchLagged { .. } => "WATCH_LAGGED",
            Self::MediaStore(_) => "UNAVAILABLE",
            Self::MediaUnreadable { .. } | Self::Internal(_) => "INTERNAL",
            Self::ChecksumMismatch { .. } => "DATA_LOSS",
            Self::DealClosed { .. } => "DEAL_CLOSED",
            Self::LotHeldForAnotherDeal { .. } => "LOT_HELD_FOR_ANOTHER_DEAL",
            Self::CrmUnavailable { .. } => "UNAVAILABLE",
            Self::CrmRefused(status) => match status.code() {
                Code::PermissionDenied => "PERMISSION_DENIED",
                _ => "UNAUTHENTICATED",
            },
            Self::Db(e) => match e.kind() {
                Kind::NotFound(_) => "NOT_FOUND",
                Kind::Invalid(_) => "INVALID_ARGUMENT",
                Kind::InvalidBecause(reason, _)
                | Kind::AlreadyExists { reason, .. }
                | Kind::Precondition { reason, .. }
                | Kind::Aborted { reason, .. } => reason,
                Kind::NoTenant => "TENANT_MISSING",
                Kind::Unavailable(..) => "UNAVAILABLE",
                Kind::Internal(_) => "INTERNAL",
            },
        }
    }
}

/// The reason a transition refused from `from` carries: `LOT_` and the status.
fn refused_reason(from: LotStatus) -> &'static str {
    match from {
        LotStatus::Available => "LOT_AVAILABLE",
        LotStatus::Hold => "LOT_HOLD",
        LotStatus::Reserved => "LOT_RESERVED",
        LotStatus::Exchanged => "LOT_EXCHANGED",
        LotStatus::Unconditional => "LOT_UNCONDITIONAL",
        LotStatus::Settled => "LOT_SETTLED",
        LotStatus::Withdrawn => "LOT_WITHDRAWN",
    }
}

impl From<sqlx::Error> for PropertyError {
    fn from(err: sqlx::Error) -> Self {
        Self::Db(fusion_db::Error::from_sqlx(DOMAIN, err))
    }
}

impl From<PropertyError> for Status {
    fn from(err: PropertyError) -> Status {
        let reason = err.reason();
        let message = err.to_string();
        match err {
            PropertyError::Invalid(violations) => errors::invalid_argument(DOMAIN, violations),
            PropertyError::NotFound { .. } => errors::not_found(DOMAIN, message),
            PropertyError::LotSold { .. }
            | PropertyError::Refused(_)
            | PropertyError::HasMedia { .. }
            | PropertyError::ParentDeleted { .. }
            | PropertyError::DeveloperDeleted { .. }
            | PropertyError::DealClosed { .. }
            | PropertyError::LotHeldForAnotherDeal { .. } => {
                errors::failed_precondition(DOMAIN, reason, message)
            }
            PropertyError::CrmUnavailable { .. } => errors::unavailable(DOMAIN, message),
            PropertyError::CrmRefused(status) => status,
            PropertyError::WatchLagged { .. } => errors::aborted(DOMAIN, reason, message),
            PropertyError::MediaStore(cause) => {
                tracing::error!(error = %cause, "media store failed");
                errors::unavailable(DOMAIN, message)
            }
            PropertyError::MediaUnreadable { media_id, source } => {
                tracing::error!(media_id, error = %source, "a media item's object cannot be read");
                errors::internal(DOMAIN)
            }
            PropertyError::ChecksumMismatch { media_id } => {
                tracing::error!(media_id, "a media object does not match its checksum");
                let mut details = ErrorDetails::new();
                details.set_error_info(reason, DOMAIN, HashMap::new());
                Status::with_error_details(Code::DataLoss, message, details)
            }
            PropertyError::Internal(cause) => {
                tracing::error!(error = %cause, "property error");
                errors::internal(DOMAIN)
            }
            PropertyError::Db(e) => e.into_status_in(DOMAIN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::{ALL_ACTIONS, ALL_STATUSES, next};

    /// One error of each of property's own variants (a new variant must be added here,
    /// or this match stops compiling).
    fn one_of_each() -> Vec<PropertyError> {
        let samples = vec![
            PropertyError::invalid("name", "is required"),
            PropertyError::not_found("lot", 1),
            PropertyError::LotSold {
                status: LotStatus::Reserved,
            },
            PropertyError::HasMedia {
                mediable_type: "lot",
                id: 1,
            },
            PropertyError::ParentDeleted {
                mediable_type: "lot".to_owned(),
                media_id: 1,
            },
            PropertyError::DeveloperDeleted { developer_id: 1 },
            PropertyError::WatchLagged { missed: 3 },
            PropertyError::MediaStore(unavailable_store()),
            PropertyError::MediaUnreadable {
                media_id: 1,
                source: unavailable_store(),
            },
            PropertyError::ChecksumMismatch { media_id: 1 },
            PropertyError::DealClosed {
                deal_id: 1,
                status: "won".to_owned(),
            },
            PropertyError::LotHeldForAnotherDeal {
                lot_id: 1,
                deal_id: 2,
            },
            PropertyError::CrmUnavailable { field: "deal_id" },
            PropertyError::Internal("boom".into()),
            PropertyError::Db(fusion_db::Error::not_found(DOMAIN, "lot", 1)),
        ];
        for e in &samples {
            match e {
                PropertyError::Invalid(_)
                | PropertyError::NotFound { .. }
                | PropertyError::LotSold { .. }
                | PropertyError::Refused(_)
                | PropertyError::HasMedia { .. }
                | PropertyError::ParentDeleted { .. }
                | PropertyError::DeveloperDeleted { .. }
                | PropertyError::WatchLagged { .. }
                | PropertyError::MediaStore(_)
                | PropertyError::MediaUnreadable { .. }
                | PropertyError::ChecksumMismatch { .. }
                | PropertyError::DealClosed { .. }
                | PropertyError::LotHeldForAnotherDeal { .. }
                | PropertyError::CrmUnavailable { .. }
                // Crm's own status, passed on with crm's reason and domain.
                | PropertyError::CrmRefused(_)
                | PropertyError::Internal(_)
                | PropertyError::Db(_) => {}
            }
        }
        samples
    }

    fn unavailable_store() -> object_store::Error {
        object_store::Error::NotFound {
            path: "media/1".to_owned(),
            source: "gone".into(),
        }
    }

    fn info(status: &Status) -> tonic_types::ErrorInfo {
        status
            .get_details_error_info()
            .expect("every error carries ErrorInfo")
    }

    #[test]
    fn every_error_carries_its_reason_in_the_property_domain() {
        let refusals = ALL_STATUSES
            .into_iter()
            .flat_map(|from| ALL_ACTIONS.into_iter().map(move |a| next(from, a)))
            .filter_map(Result::err)
            .map(PropertyError::from);
        for err in one_of_each().into_iter().chain(refusals) {
            let reason = err.reason();
            assert!(REASONS.contains(&reason), "{reason} is not in REASONS");
            let status = Status::from(err);
            let info = info(&status);
            assert_eq!(info.reason, reason);
            assert_eq!(info.domain, DOMAIN);
        }
    }

    #[test]
    fn every_lot_status_has_a_refusal_reason() {
        for status in ALL_STATUSES {
            let reason = refused_reason(status);
            assert_eq!(reason, format!("LOT_{}", status.as_str().to_uppercase()));
            assert!(REASONS.contains(&reason));
        }
    }

    #[test]
    fn refusals_keep_the_lifecycle_message() {
        let refused = next(
            LotStatus::Settled,
            crate::domain::lifecycle::Action::Reserve,
        )
        .expect_err("a settled lot is final");
        let status = Status::from(PropertyError::from(refused));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), "cannot reserve a lot that is settled");
        assert_eq!(info(&status).reason, "LOT_SETTLED");
    }

    /// The reasons named in property's proto comments (`Reasons: A, B.` lines, on each
    /// RPC and on each service for what any method may give).
    fn reasons_in_protos() -> std::collections::BTreeSet<String> {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto/fusion/property/v1");
        let mut found = std::collections::BTreeSet::new();
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).expect("property's proto folder") {
            let path = entry.expect("a proto file").path();
            if path.extension().is_none_or(|e| e != "proto") {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path).expect("a readable proto file");
            for line in text.lines() {
                let Some(comment) = line.trim().strip_prefix("//") else {
                    continue;
                };
                let Some((_, list)) = comment.split_once("Reasons:") else {
                    continue;
                };
                for name in list.split([',', '.', ' ']).filter(|n| !n.is_empty()) {
                    assert!(
                        name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                        "{}: {name:?} in a reason list is not a reason",
                        path.display()
                    );
                    found.insert(name.to_owned());
                }
            }
        }
        assert!(
            files >= 6,
            "property's proto files were not found in {}",
            dir.display()
        );
        found
    }

    #[test]
    fn the_catalogue_and_the_reasons_listed_in_the_protos_are_the_same() {
        let listed = reasons_in_protos();
        let catalogue: std::collections::BTreeSet<String> =
            REASONS.iter().map(|r| (*r).to_owned()).collect();
        let unlisted: Vec<_> = catalogue.difference(&listed).collect();
        assert!(
            unlisted.is_empty(),
            "reasons no RPC's proto comment lists: {unlisted:?}"
        );
        let unknown: Vec<_> = listed.difference(&catalogue).collect();
        assert!(
            unknown.is_empty(),
            "reasons the proto comments list that PropertyError does not have: {unknown:?}"
        );
    }
}
