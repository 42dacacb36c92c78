//! ai-marketing's catalogue of errors: every reason the context can give, in one enum,
//! and the one conversion to a gRPC [`Status`] (the error domain, [`DOMAIN`], attached
//! here).
//!
//! `store/` and `domain/` return [`AiMarketingError`]; only `grpc/` (and the kit's
//! hooks) turn it into a `Status`. The reasons each RPC can return are listed in its
//! comment in `proto/fusion/aimarketing/v1/`, after `Reasons:`; a test below keeps the
//! two lists in step. The catalogue covers the whole contract, the model provider's
//! failures included, so every service of the package gives its errors one way.

use std::collections::HashMap;
use std::time::Duration;

use fusion_proto::errors::{self, FieldViolation};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::DOMAIN;

/// Every error ai-marketing gives.
#[derive(Debug, thiserror::Error)]
pub enum AiMarketingError {
    /// Fields of the request are malformed (INVALID_ARGUMENT with a `BadRequest`).
    #[error("invalid argument: {}", fields(.0))]
    Invalid(Vec<FieldViolation>),
    /// The record is missing, deleted or another tenant's (NOT_FOUND).
    #[error("{what} {id} not found")]
    NotFound {
        /// The kind of record (`prompt`).
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// A system prompt is the platform's: no tenant changes it (SYSTEM_PROMPT).
    #[error("prompt {id} is a system prompt; copy it with CopyPrompt to change it")]
    SystemPrompt {
        /// The prompt.
        id: i64,
    },
    /// The campaign's status does not allow the step (CAMPAIGN_STATUS).
    #[error("campaign {id} is {status}; it can be {action} only when {allowed}")]
    CampaignStatus {
        /// The campaign.
        id: i64,
        /// Its status.
        status: String,
        /// What the caller tried (`started`).
        action: &'static str,
        /// The statuses that allow it (`scheduled`).
        allowed: &'static str,
    },
    /// A completed or cancelled campaign changes only its description and tags, and
    /// never its leads (CAMPAIGN_CLOSED).
    #[error("campaign {id} is {status}; its {what} no longer change")]
    CampaignClosed {
        /// The campaign.
        id: i64,
        /// Its status.
        status: String,
        /// What the caller tried to change (`leads`, `budget`).
        what: String,
    },
    /// A campaign is scheduled only with a start date (CAMPAIGN_START_DATE_MISSING).
    #[error("campaign {id} has no start date; set one before scheduling it")]
    CampaignStartDateMissing {
        /// The campaign.
        id: i64,
    },
    /// No model provider is configured (AI_NOT_CONFIGURED): the service never invents
    /// a reply.
    #[error("no model provider is configured: set {0}")]
    AiNotConfigured(String),
    /// The tenant does not allow the model (MODEL_NOT_ALLOWED).
    #[error("model {model} is not among this tenant's allowed models")]
    ModelNotAllowed {
        /// The model asked for.
        model: String,
    },
    /// The tenant's monthly token allowance is spent (AI_QUOTA_EXCEEDED, with a
    /// `QuotaFailure`).
    #[error("this tenant's {allowance} tokens for the month are spent")]
    QuotaExceeded {
        /// The monthly allowance.
        allowance: i64,
    },
    /// The provider's rate limit is reached (AI_RATE_LIMITED, with a `RetryInfo`).
    #[error("the model provider's rate limit is reached; retry in {} s", .retry_after.as_secs())]
    RateLimited {
        /// When to retry.
        retry_after: Duration,
    },
    /// The provider failed or went away (AI_UNAVAILABLE).
    #[error("the model provider is not available: {0}")]
    ProviderUnavailable(String),
    /// The provider did not answer in time (AI_TIMEOUT, DEADLINE_EXCEEDED).
    #[error("the model provider did not answer within {} s", .0.as_secs())]
    ProviderTimeout(Duration),
    /// A lead states nothing to match lots against (LEAD_HAS_NO_CRITERIA).
    #[error("lead {lead_id} states no budget, bedrooms, location or features to match")]
    LeadHasNoCriteria {
        /// The lead.
        lead_id: i64,
    },
    /// Identity, crm or property could not answer (UNAVAILABLE).
    #[error("{owner} is not available to read {field}; try again")]
    OwnerUnavailable {
        /// `identity`, `crm` or `property`.
        owner: &'static str,
        /// The request field being read.
        field: String,
    },
    /// The owner of a record refused the caller (their PERMISSION_DENIED or
    /// UNAUTHENTICATED, passed on as it is).
    #[error("{}", .0.message())]
    OwnerRefused(Status),
    /// A fault of ai-marketing itself: logged, returned opaque (INTERNAL).
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// What the database layer reports.
    #[error(transparent)]
    Db(#[from] fusion_db::Error),
}

/// Every reason ai-marketing gives in its own domain, its own and those of the
/// database layer it passes on.
pub const REASONS: &[&str] = &[
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "SYSTEM_PROMPT",
    "CAMPAIGN_STATUS",
    "CAMPAIGN_CLOSED",
    "CAMPAIGN_START_DATE_MISSING",
    "AI_NOT_CONFIGURED",
    "MODEL_NOT_ALLOWED",
    "AI_QUOTA_EXCEEDED",
    "AI_RATE_LIMITED",
    "AI_UNAVAILABLE",
    "AI_TIMEOUT",
    "LEAD_HAS_NO_CRITERIA",
    "UNAVAILABLE",
    "INTERNAL",
    // From the database layer.
    "REQUEST_ID_REUSED",
    "NOT_DELETED",
    "ETAG_MISMATCH",
    "CONCURRENT_UPDATE",
];

impl AiMarketingError {
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

    /// The error as an event consumer reports it: a database, crm or property that
    /// cannot answer is an outage (the event waits, it is not dead-lettered), anything
    /// else counts against the event.
    pub fn into_event_error(self) -> anyhow::Error {
        match self {
            Self::Db(e) => e.into(),
            Self::OwnerUnavailable { owner, field } => anyhow::Error::new(fusion_db::Error::new(
                DOMAIN,
                fusion_db::Kind::Unavailable("a context ai-marketing asks is not available", None),
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
            Self::SystemPrompt { .. } => "SYSTEM_PROMPT",
            Self::CampaignStatus { .. } => "CAMPAIGN_STATUS",
            Self::CampaignClosed { .. } => "CAMPAIGN_CLOSED",
            Self::CampaignStartDateMissing { .. } => "CAMPAIGN_START_DATE_MISSING",
            Self::AiNotConfigured(_) => "AI_NOT_CONFIGURED",
            Self::ModelNotAllowed { .. } => "MODEL_NOT_ALLOWED",
            Self::QuotaExceeded { .. } => "AI_QUOTA_EXCEEDED",
            Self::RateLimited { .. } => "AI_RATE_LIMITED",
            Self::ProviderUnavailable(_) => "AI_UNAVAILABLE",
            Self::ProviderTimeout(_) => "AI_TIMEOUT",
            Self::LeadHasNoCriteria { .. } => "LEAD_HAS_NO_CRITERIA",
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

/// A status of `code` whose details are an `ErrorInfo` with `reason` and what `more`
/// adds.
fn detailed(
    code: Code,
    reason: &str,
    message: String,
    more: impl FnOnce(&mut ErrorDetails),
) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, DOMAIN, HashMap::new());
    more(&mut details);
    Status::with_error_details(code, message, details)
}

impl From<sqlx::Error> for AiMarketingError {
    fn from(err: sqlx::Error) -> Self {
        Self::Db(fusion_db::Error::from_sqlx(DOMAIN, err))
    }
}

impl From<AiMarketingError> for Status {
    fn from(err: AiMarketingError) -> Status {
        let reason = err.reason();
        let message = err.to_string();
        match err {
            AiMarketingError::Invalid(violations) => errors::invalid_argument(DOMAIN, violations),
            AiMarketingError::NotFound { .. } => errors::not_found(DOMAIN, message),
            AiMarketingError::SystemPrompt { .. }
            | AiMarketingError::CampaignStatus { .. }
            | AiMarketingError::CampaignClosed { .. }
            | AiMarketingError::CampaignStartDateMissing { .. }
            | AiMarketingError::AiNotConfigured(_)
            | AiMarketingError::ModelNotAllowed { .. }
            | AiMarketingError::LeadHasNoCriteria { .. } => {
                errors::failed_precondition(DOMAIN, reason, message)
            }
            AiMarketingError::QuotaExceeded { allowance } => {
                detailed(Code::ResourceExhausted, reason, message, |d| {
                    d.add_quota_failure_violation(
                        "ai_tokens_per_month",
                        format!("the tenant's plan allows {allowance} tokens a month"),
                    );
                })
            }
            AiMarketingError::RateLimited { retry_after } => {
                detailed(Code::ResourceExhausted, reason, message, |d| {
                    d.set_retry_info(Some(retry_after));
                })
            }
            AiMarketingError::ProviderUnavailable(_) => {
                detailed(Code::Unavailable, reason, message, |_| {})
            }
            AiMarketingError::ProviderTimeout(_) => {
                errors::deadline_exceeded(DOMAIN, reason, message)
            }
            AiMarketingError::OwnerUnavailable { .. } => errors::unavailable(DOMAIN, message),
            AiMarketingError::OwnerRefused(status) => status,
            AiMarketingError::Internal(cause) => {
                tracing::error!(cause, "internal error");
                errors::internal(DOMAIN)
            }
            AiMarketingError::Db(e) => e.into_status_in(DOMAIN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed_in_the_proto_comments_and_every_listed_one_is_in_the_enum() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../proto/fusion/aimarketing/v1");
        fusion_testkit::reasons::assert_catalogue_matches(&dir, REASONS);
    }

    fn samples() -> Vec<AiMarketingError> {
        vec![
            AiMarketingError::invalid("f", "bad"),
            AiMarketingError::NotFound {
                what: "prompt",
                id: 1,
            },
            AiMarketingError::SystemPrompt { id: 1 },
            AiMarketingError::CampaignStatus {
                id: 1,
                status: "draft".into(),
                action: "started",
                allowed: "scheduled",
            },
            AiMarketingError::CampaignClosed {
                id: 1,
                status: "completed".into(),
                what: "leads".into(),
            },
            AiMarketingError::CampaignStartDateMissing { id: 1 },
            AiMarketingError::AiNotConfigured("AI_OPENAI_BASE_URL".into()),
            AiMarketingError::ModelNotAllowed {
                model: "gpt-4o".into(),
            },
            AiMarketingError::QuotaExceeded { allowance: 1_000 },
            AiMarketingError::RateLimited {
                retry_after: Duration::from_secs(3),
            },
            AiMarketingError::ProviderUnavailable("connection reset".into()),
            AiMarketingError::ProviderTimeout(Duration::from_secs(30)),
            AiMarketingError::LeadHasNoCriteria { lead_id: 1 },
            AiMarketingError::OwnerUnavailable {
                owner: "crm",
                field: "lead_id".into(),
            },
            AiMarketingError::Internal("test"),
        ]
    }

    #[test]
    fn every_variant_goes_out_with_its_reason_in_the_context_s_domain() {
        for err in samples() {
            let reason = err.reason();
            assert!(REASONS.contains(&reason), "{reason} is not in REASONS");
            let status = Status::from(err);
            let info = status.get_details_error_info().unwrap();
            assert_eq!(
                (info.reason.as_str(), info.domain.as_str()),
                (reason, DOMAIN)
            );
        }
    }

    #[test]
    fn an_event_waits_out_an_owner_or_database_outage_but_not_its_own_fault() {
        let unavailable = |err: AiMarketingError| {
            err.into_event_error().chain().any(|cause| {
                cause
                    .downcast_ref::<fusion_db::Error>()
                    .is_some_and(|e| matches!(e.kind(), fusion_db::Kind::Unavailable(..)))
            })
        };
        assert!(unavailable(AiMarketingError::OwnerUnavailable {
            owner: "crm",
            field: "contact_id".into(),
        }));
        assert!(unavailable(AiMarketingError::Db(fusion_db::Error::new(
            DOMAIN,
            fusion_db::Kind::Unavailable("database unavailable", None),
        ))));
        assert!(!unavailable(AiMarketingError::invalid(
            "lead_id",
            "no lead 3"
        )));
        assert!(!unavailable(AiMarketingError::Internal("test")));
    }

    #[test]
    fn the_provider_s_failures_carry_their_codes_and_details() {
        let status = Status::from(AiMarketingError::RateLimited {
            retry_after: Duration::from_secs(7),
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = status.get_details_retry_info().unwrap();
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(7)));

        let status = Status::from(AiMarketingError::QuotaExceeded { allowance: 500 });
        assert_eq!(status.code(), Code::ResourceExhausted);
        let quota = status.get_details_quota_failure().unwrap();
        assert_eq!(quota.violations[0].subject, "ai_tokens_per_month");

        let status = Status::from(AiMarketingError::AiNotConfigured(
            "AI_OPENAI_BASE_URL".into(),
        ));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("AI_OPENAI_BASE_URL"));

        let status = Status::from(AiMarketingError::ProviderTimeout(Duration::from_secs(30)));
        assert_eq!(status.code(), Code::DeadlineExceeded);
        let status = Status::from(AiMarketingError::ProviderUnavailable("reset".into()));
        assert_eq!(status.code(), Code::Unavailable);
    }
}
