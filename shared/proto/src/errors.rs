//! The one place a gRPC error is built.
//!
//! Every error carries a `google.rpc.ErrorInfo` (`reason` in UPPER_SNAKE_CASE and a
//! `domain` such as `identity.fusion`), plus the detail the API conventions name for
//! its code: `BadRequest` for INVALID_ARGUMENT, `PreconditionFailure` for
//! FAILED_PRECONDITION, `RetryInfo` for RESOURCE_EXHAUSTED. Messages are written for
//! the caller: they never carry SQL, a stack trace or another tenant's data.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub use tonic_types::FieldViolation;

/// The domain of errors raised by shared plumbing rather than a bounded context
/// (authentication, the gateway).
pub const PLATFORM_DOMAIN: &str = "fusion";

fn with_details(code: Code, message: impl Into<String>, details: ErrorDetails) -> Status {
    Status::with_error_details(code, message, details)
}

fn error_info(reason: &str, domain: &str, metadata: HashMap<String, String>) -> ErrorDetails {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, domain, metadata);
    details
}

/// INVALID_ARGUMENT with one `FieldViolation` per bad field.
pub fn invalid_argument(domain: &str, violations: Vec<FieldViolation>) -> Status {
    invalid_argument_because(domain, "INVALID_ARGUMENT", violations)
}

/// INVALID_ARGUMENT with a reason of its own (`REQUEST_ID_REUSED`) and one
/// `FieldViolation` per bad field.
pub fn invalid_argument_because(
    domain: &str,
    reason: &str,
    violations: Vec<FieldViolation>,
) -> Status {
    let message = match violations.as_slice() {
        [] => "invalid argument".to_owned(),
        [one] => format!("invalid {}: {}", one.field, one.description),
        many => format!(
            "invalid arguments: {}",
            many.iter()
                .map(|v| v.field.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut details = error_info(reason, domain, HashMap::new());
    details.set_bad_request(violations);
    with_details(Code::InvalidArgument, message, details)
}

/// INVALID_ARGUMENT for a single field.
pub fn invalid_field(domain: &str, field: &str, description: impl Into<String>) -> Status {
    invalid_argument(domain, vec![FieldViolation::new(field, description)])
}

/// NOT_FOUND: a missing, deleted or another tenant's row look the same.
pub fn not_found(domain: &str, message: impl Into<String>) -> Status {
    with_details(
        Code::NotFound,
        message,
        error_info("NOT_FOUND", domain, HashMap::new()),
    )
}

/// ALREADY_EXISTS for unique conflicts (slug, email, an undelete of a live resource).
pub fn already_exists(domain: &str, reason: &str, message: impl Into<String>) -> Status {
    with_details(
        Code::AlreadyExists,
        message,
        error_info(reason, domain, HashMap::new()),
    )
}

/// FAILED_PRECONDITION with a `PreconditionFailure` whose type is `reason`.
pub fn failed_precondition(domain: &str, reason: &str, message: impl Into<String>) -> Status {
    let message = message.into();
    let mut details = error_info(reason, domain, HashMap::new());
    details.add_precondition_failure_violation(reason, domain, message.clone());
    with_details(Code::FailedPrecondition, message, details)
}

/// ABORTED: etag mismatch or a transaction that lost a race; the caller may retry.
pub fn aborted(domain: &str, reason: &str, message: impl Into<String>) -> Status {
    with_details(
        Code::Aborted,
        message,
        error_info(reason, domain, HashMap::new()),
    )
}

/// UNAUTHENTICATED: no token, or one that is expired, forged or not for this tenant.
pub fn unauthenticated(reason: &str, message: impl Into<String>) -> Status {
    with_details(
        Code::Unauthenticated,
        message,
        error_info(reason, PLATFORM_DOMAIN, HashMap::new()),
    )
}

/// PERMISSION_DENIED naming the permission the caller's roles lack.
pub fn permission_denied(permission: &str) -> Status {
    let metadata = HashMap::from([("permission".to_owned(), permission.to_owned())]);
    with_details(
        Code::PermissionDenied,
        format!("missing permission {permission}"),
        error_info("PERMISSION_DENIED", PLATFORM_DOMAIN, metadata),
    )
}

/// RESOURCE_EXHAUSTED (rate limit) with a `RetryInfo` telling the caller when to come back.
pub fn resource_exhausted(retry_after: Duration) -> Status {
    resource_exhausted_with(PLATFORM_DOMAIN, "RATE_LIMITED", retry_after)
}

/// RESOURCE_EXHAUSTED with a domain-specific reason (e.g. `LOGIN_THROTTLED`).
pub fn resource_exhausted_with(domain: &str, reason: &str, retry_after: Duration) -> Status {
    let mut details = error_info(reason, domain, HashMap::new());
    details.set_retry_info(Some(retry_after));
    with_details(
        Code::ResourceExhausted,
        format!(
            "too many requests; retry in {}s",
            retry_after.as_secs().max(1)
        ),
        details,
    )
}

/// UNAVAILABLE: a dependency (database, upstream) cannot be reached; safe to retry.
pub fn unavailable(domain: &str, message: impl Into<String>) -> Status {
    with_details(
        Code::Unavailable,
        message,
        error_info("UNAVAILABLE", domain, HashMap::new()),
    )
}

/// INTERNAL with an opaque message; the cause belongs in the server log only.
pub fn internal(domain: &str) -> Status {
    with_details(
        Code::Internal,
        "internal error",
        error_info("INTERNAL", domain, HashMap::new()),
    )
}

/// DEADLINE_EXCEEDED with `reason`: the call ran out of time on the caller's side of
/// the work (e.g. `STREAM_IDLE`, a client stream that stopped sending).
pub fn deadline_exceeded(domain: &str, reason: &str, message: impl Into<String>) -> Status {
    with_details(
        Code::DeadlineExceeded,
        message,
        error_info(reason, domain, HashMap::new()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(status: &Status) -> tonic_types::ErrorInfo {
        status
            .get_details_error_info()
            .expect("every error carries ErrorInfo")
    }

    #[test]
    fn invalid_argument_carries_one_violation_per_field() {
        let status = invalid_argument(
            "identity.fusion",
            vec![
                FieldViolation::new("email", "must be an email address"),
                FieldViolation::new("name", "must not be empty"),
            ],
        );
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(info(&status).domain, "identity.fusion");
        let fields: Vec<_> = status
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["email", "name"]);
        assert_eq!(status.message(), "invalid arguments: email, name");
    }

    #[test]
    fn permission_denied_names_the_permission() {
        let status = permission_denied("crm.leads.write");
        assert_eq!(status.code(), Code::PermissionDenied);
        let info = info(&status);
        assert_eq!(info.reason, "PERMISSION_DENIED");
        assert_eq!(info.metadata["permission"], "crm.leads.write");
    }

    #[test]
    fn failed_precondition_carries_a_precondition_failure() {
        let status = failed_precondition("property.fusion", "LOT_NOT_AVAILABLE", "lot is sold");
        assert_eq!(status.code(), Code::FailedPrecondition);
        let failure = status.get_details_precondition_failure().unwrap();
        assert_eq!(failure.violations[0].r#type, "LOT_NOT_AVAILABLE");
        assert_eq!(failure.violations[0].description, "lot is sold");
    }

    #[test]
    fn resource_exhausted_says_when_to_retry() {
        let status = resource_exhausted(Duration::from_secs(3));
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = status.get_details_retry_info().unwrap();
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(3)));
        assert_eq!(info(&status).reason, "RATE_LIMITED");
    }

    #[test]
    fn internal_is_opaque() {
        let status = internal("crm.fusion");
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn unauthenticated_and_not_found_carry_error_info() {
        assert_eq!(
            info(&unauthenticated("TOKEN_EXPIRED", "token expired")).reason,
            "TOKEN_EXPIRED"
        );
        assert_eq!(
            info(&not_found("crm.fusion", "lead 7 not found")).reason,
            "NOT_FOUND"
        );
    }
}
