//! The database layer's own error, and the one mapping from it to a gRPC status.
//!
//! Every function of this crate returns [`Error`]: what went wrong, in terms a caller can
//! act on (a row not found, a unique value taken, a stale etag, a bad filter), with the
//! underlying `sqlx::Error` kept as the source for logs only. A context wraps it in its
//! own error enum (its catalogue of reasons), which becomes a `Status` once, at the gRPC
//! boundary; [`Error::into_status`] is the mapping that conversion uses. Messages never
//! carry SQL text or values: a unique violation names only its constraint, which
//! migrations name after the field it protects (`users_email_key` → "email").

use fusion_proto::errors::{self, FieldViolation};
use sqlx::error::ErrorKind;
use sqlx::postgres::PgDatabaseError;
use tonic::Status;

/// What the database layer reports, with the error domain of the context that asked
/// (`crm.fusion`; `fusion` for the pool itself).
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    domain: &'static str,
    kind: Kind,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Kind {
    /// The row is missing, soft-deleted, or another tenant's: the three look the same.
    #[error("{0}")]
    NotFound(String),
    /// Fields of the request are malformed (a filter, a page token, an id, a value).
    #[error("invalid argument")]
    Invalid(Vec<FieldViolation>),
    /// Fields are malformed for a reason of its own (`REQUEST_ID_REUSED`).
    #[error("invalid argument: {0}")]
    InvalidBecause(&'static str, Vec<FieldViolation>),
    /// The row exists already: a unique value is taken (`ALREADY_EXISTS`, naming the
    /// field the constraint protects), or an undeleted row is live (`NOT_DELETED`).
    #[error("{message}")]
    AlreadyExists {
        /// The reason, UPPER_SNAKE_CASE.
        reason: &'static str,
        /// What exists.
        message: String,
    },
    /// The row's state refuses the change (`HAS_CHILDREN`, `REFERENCE_NOT_FOUND`).
    #[error("{message}")]
    Precondition {
        /// The reason, UPPER_SNAKE_CASE.
        reason: &'static str,
        /// What the caller can do about it.
        message: String,
    },
    /// The row changed since the caller read it, or a concurrent transaction won.
    #[error("{message}")]
    Aborted {
        /// `ETAG_MISMATCH` or `CONCURRENT_UPDATE`.
        reason: &'static str,
        /// What the caller can do about it.
        message: String,
    },
    /// No tenant was bound to the request.
    #[error("no tenant in the request")]
    NoTenant,
    /// The database cannot be reached now (pool timeout, connection lost, shutting
    /// down, query cancelled); worth a retry.
    #[error("{0}")]
    Unavailable(&'static str, #[source] Option<sqlx::Error>),
    /// A fault: logged with its cause, returned opaque.
    #[error("database error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Kind {
    /// The `google.rpc.ErrorInfo` reason this kind goes out with, which every context's
    /// error catalogue passes on unchanged.
    pub fn reason(&self) -> &'static str {
        match self {
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
}

impl Error {
    /// An error of `kind` raised for the context whose errors carry `domain`.
    pub fn new(domain: &'static str, kind: Kind) -> Self {
        Self { domain, kind }
    }

    /// NOT_FOUND for `what` (`lot`) `id`.
    pub fn not_found(domain: &'static str, what: &str, id: i64) -> Self {
        Self::new(domain, Kind::NotFound(format!("{what} {id} not found")))
    }

    /// INVALID_ARGUMENT for one field.
    pub fn invalid(domain: &'static str, field: &str, description: impl Into<String>) -> Self {
        Self::new(
            domain,
            Kind::Invalid(vec![FieldViolation::new(field, description)]),
        )
    }

    /// FAILED_PRECONDITION with `reason`.
    pub fn precondition(domain: &'static str, reason: &'static str, message: String) -> Self {
        Self::new(domain, Kind::Precondition { reason, message })
    }

    /// Classifies a `sqlx` error raised for `domain`.
    ///
    /// Whatever a client's values can cause is the client's error, named by the field
    /// PostgreSQL reports (a not-null column, a constraint named after its field) or
    /// else the generic `value`: integrity violations (class 23), data exceptions (class
    /// 22: a date out of range, a number too large, text too long or holding NUL), and
    /// program limits (class 54: an index row too large). The description is ours, never
    /// PostgreSQL's text. Lost connections and shutdowns are UNAVAILABLE; everything
    /// else (a privilege or syntax error, say) is a fault of ours, INTERNAL.
    pub fn from_sqlx(domain: &'static str, err: sqlx::Error) -> Self {
        let kind = match &err {
            sqlx::Error::RowNotFound => Kind::NotFound("not found".to_owned()),
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::WorkerCrashed => Kind::Unavailable("database unavailable", Some(err)),
            // A value sqlx cannot put on the wire (a time past the binary format's
            // range): refused before PostgreSQL saw it.
            sqlx::Error::Encode(_) => {
                tracing::debug!(error = %err, "a value could not be encoded");
                Kind::Invalid(vec![FieldViolation::new(
                    GENERIC_FIELD,
                    "is out of the range the store accepts",
                )])
            }
            sqlx::Error::Database(db) => {
                let constraint = db.constraint().unwrap_or("").to_owned();
                // Not-null violations (and some data errors) name their column.
                let column = db
                    .try_downcast_ref::<PgDatabaseError>()
                    .and_then(PgDatabaseError::column)
                    .map(str::to_owned);
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                match (db.kind(), code.as_str()) {
                    (ErrorKind::UniqueViolation, _) => Kind::AlreadyExists {
                        reason: "ALREADY_EXISTS",
                        message: format!("{} already exists", field_of(&constraint)),
                    },
                    // 23001: a RESTRICT reference, the same refusal as a foreign key's.
                    (ErrorKind::ForeignKeyViolation, _) | (_, "23001") => Kind::Precondition {
                        reason: "REFERENCE_NOT_FOUND",
                        message: format!(
                            "{} refers to a missing or still-referenced row",
                            field_of(&constraint)
                        ),
                    },
                    (ErrorKind::NotNullViolation, _) => Kind::Invalid(vec![FieldViolation::new(
                        column.unwrap_or_else(|| field_of(&constraint)),
                        "is required",
                    )]),
                    (ErrorKind::CheckViolation, _) => Kind::Invalid(vec![FieldViolation::new(
                        field_of(&constraint),
                        "value is not allowed",
                    )]),
                    // An exclusion constraint: the value overlaps another row's.
                    (_, "23P01") => Kind::Precondition {
                        reason: "CONFLICT",
                        message: format!(
                            "{} conflicts with an existing row",
                            field_of(&constraint)
                        ),
                    },
                    (_, code) if code.starts_with("22") || code.starts_with("54") => {
                        tracing::debug!(error = %err, "the database refused a value");
                        Kind::Invalid(vec![FieldViolation::new(
                            column.unwrap_or_else(|| GENERIC_FIELD.to_owned()),
                            refused_value(code),
                        )])
                    }
                    (_, "40001" | "40P01") => Kind::Aborted {
                        reason: "CONCURRENT_UPDATE",
                        message: "concurrent update; retry".to_owned(),
                    },
                    (_, "57014") => Kind::Unavailable(QUERY_CANCELLED, Some(err)),
                    // The server is shutting down or restarting (57P01..57P03).
                    (_, code)
                        if code.starts_with("08")
                            || code.starts_with("53")
                            || code.starts_with("57P") =>
                    {
                        Kind::Unavailable("database unavailable", Some(err))
                    }
                    _ => Kind::Internal(Box::new(err)),
                }
            }
            _ => Kind::Internal(Box::new(err)),
        };
        Self::new(domain, kind)
    }

    /// What went wrong.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// The gRPC status for this error in `domain` (a context attaches its own domain
    /// here, whatever the layer below raised it under). Unavailable and internal causes
    /// are logged here, with their chain, and returned opaque.
    pub fn into_status_in(self, domain: &str) -> Status {
        match self.kind {
            Kind::NotFound(message) => errors::not_found(domain, message),
            Kind::Invalid(violations) => errors::invalid_argument(domain, violations),
            Kind::InvalidBecause(reason, violations) => {
                errors::invalid_argument_because(domain, reason, violations)
            }
            Kind::AlreadyExists { reason, message } => {
                errors::already_exists(domain, reason, message)
            }
            Kind::Precondition { reason, message } => {
                errors::failed_precondition(domain, reason, message)
            }
            Kind::Aborted { reason, message } => errors::aborted(domain, reason, message),
            Kind::NoTenant => errors::unauthenticated("TENANT_MISSING", "no tenant in the request"),
            Kind::Unavailable(message, _) if message == QUERY_CANCELLED && deadline_passed() => {
                // The statement timeout a unit of work takes from its call's deadline
                // fired: the call ran out of time, which a retry would not cure.
                errors::deadline_exceeded(
                    domain,
                    "DEADLINE_EXCEEDED",
                    "the call's deadline passed while the database worked on it",
                )
            }
            Kind::Unavailable(message, cause) => {
                if let Some(cause) = cause {
                    tracing::warn!(error = %cause, "{message}");
                }
                errors::unavailable(domain, message)
            }
            Kind::Internal(cause) => {
                tracing::error!(error = %cause, "database error");
                errors::internal(domain)
            }
        }
    }

    /// The gRPC status for this error in the domain it was raised under.
    pub fn into_status(self) -> Status {
        let domain = self.domain;
        self.into_status_in(domain)
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        err.into_status()
    }
}

/// Maps a `sqlx` error raised for `domain` straight to a status (see [`Error`]).
pub fn db_status(domain: &'static str, err: sqlx::Error) -> Status {
    Error::from_sqlx(domain, err).into_status()
}

/// The field a violation names when PostgreSQL does not say which column it was.
const GENERIC_FIELD: &str = "value";

/// What a caller is told about a value PostgreSQL refused with data exception `code`
/// (class 22) or program limit (class 54), in our words rather than the server's.
fn refused_value(code: &str) -> &'static str {
    match code {
        "22001" => "is too long",
        "22003" => "is a number out of range",
        "22007" | "22008" | "22009" | "22015" => "is a date or time out of range",
        "22021" | "22P05" => "contains a character that cannot be stored (such as NUL, U+0000)",
        "22P02" => "is malformed",
        "2201B" => "is not a valid pattern",
        "54000" => "is too large to store",
        c if c.starts_with("2203") => "is not valid JSON",
        c if c.starts_with("54") => "makes the request too large or complex",
        _ => "is not a value the store accepts",
    }
}

/// What a statement cancelled by PostgreSQL (57014: a statement timeout, or a cancel
/// request) is reported as.
const QUERY_CANCELLED: &str = "query cancelled";

/// Whether the served call's deadline (`fusion_proto::deadline`) has all but passed.
fn deadline_passed() -> bool {
    fusion_proto::deadline::remaining()
        .is_some_and(|left| left < std::time::Duration::from_millis(50))
}

/// `users_tenant_id_email_key` → `email`: constraints are named `<table>_<cols>_<kind>`;
/// strip the table and kind so only the field reaches the caller.
fn field_of(constraint: &str) -> String {
    let trimmed = constraint
        .trim_end_matches("_key")
        .trim_end_matches("_fkey")
        .trim_end_matches("_check")
        .trim_end_matches("_excl")
        .trim_end_matches("_idx");
    let parts: Vec<&str> = trimmed.split('_').collect();
    let field = match parts
        .iter()
        .position(|p| *p == "id")
        .filter(|_| parts.len() > 3)
    {
        // `<table>_tenant_id_<field>`: keep what follows the tenant column.
        Some(i) if i > 0 && parts[i - 1] == "tenant" => parts[i + 1..].join("_"),
        _ => parts.get(1..).map(|p| p.join("_")).unwrap_or_default(),
    };
    if field.is_empty() {
        "value".to_owned()
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, Kind, QUERY_CANCELLED, field_of, refused_value};
    use tonic::Code;

    #[tokio::test]
    async fn a_statement_cancelled_at_its_calls_deadline_is_deadline_exceeded() {
        let cancelled = || Error::new("test.fusion", Kind::Unavailable(QUERY_CANCELLED, None));
        // No deadline (or one still far): a cancel request, worth a retry.
        assert_eq!(cancelled().into_status().code(), Code::Unavailable);
        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        let status = fusion_proto::deadline::scope(Some(far), async { cancelled().into_status() });
        assert_eq!(status.await.code(), Code::Unavailable);
        // The statement timeout taken from the call's deadline fired.
        let passed = tokio::time::Instant::now();
        let status =
            fusion_proto::deadline::scope(Some(passed), async { cancelled().into_status() });
        assert_eq!(status.await.code(), Code::DeadlineExceeded);
    }

    #[test]
    fn refused_values_are_described_in_our_words_by_class() {
        assert_eq!(refused_value("22008"), "is a date or time out of range");
        assert_eq!(refused_value("22001"), "is too long");
        assert_eq!(refused_value("22021"), refused_value("22P05"));
        assert_eq!(refused_value("22032"), "is not valid JSON");
        assert_eq!(
            refused_value("54001"),
            "makes the request too large or complex"
        );
        assert_eq!(refused_value("22012"), "is not a value the store accepts");
    }

    #[test]
    fn constraint_names_become_field_names() {
        assert_eq!(field_of("users_tenant_id_email_key"), "email");
        assert_eq!(field_of("tenants_slug_key"), "slug");
        assert_eq!(field_of("role_user_tenant_id_user_id_fkey"), "user_id");
        assert_eq!(field_of("bookings_during_excl"), "during");
        assert_eq!(field_of(""), "value");
    }
}
