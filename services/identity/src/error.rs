//! Identity's catalogue of errors: every reason this context gives, in one enum, and
//! the one conversion to a gRPC status.
//!
//! Everything below `grpc/` (the store, the domain rules, authentication, bootstrap)
//! returns [`IdentityError`]; a handler or a kit hook turns it into a `Status` with `?`,
//! which is where the error domain (`identity.fusion`) is attached. The database
//! layer's own error rides along as [`IdentityError::Db`] and keeps its reasons
//! (`ALREADY_EXISTS`, `ETAG_MISMATCH`, ...). Internal causes are logged with their chain
//! and returned opaque.
//!
//! [`REASONS`] lists every reason a caller can see from identity; the proto comments
//! (`Reasons:` under each RPC) name them, and a test keeps the two in step.

use std::error::Error as StdError;
use std::time::Duration;

use fusion_db::error::Kind;
use fusion_proto::errors::{self, FieldViolation};
use tonic::Status;

use crate::DOMAIN;

/// Why identity refused a request or failed to serve it.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Fields of the request are malformed (`INVALID_ARGUMENT`, one violation a field).
    #[error("invalid {}", fields(.0))]
    Invalid(Vec<FieldViolation>),
    /// The resource is missing, deleted, or another tenant's (`NOT_FOUND`).
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for (`user`).
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// The caller's roles lack a permission this particular change needs
    /// (`PERMISSION_DENIED`), beyond the method's own, which the token layer checks.
    #[error("missing permission {permission}")]
    PermissionDenied {
        /// The permission needed (`platform.tenants.write`).
        permission: &'static str,
    },
    /// A user may not do this to themselves (`SELF`).
    #[error("you cannot {action} yourself")]
    SelfAction {
        /// What was refused (`delete`, `deactivate`).
        action: &'static str,
    },
    /// A tenant may not delete itself (`OWN_TENANT`).
    #[error("a tenant cannot delete itself")]
    OwnTenant,
    /// The platform tenant is never deleted (`PLATFORM_TENANT`).
    #[error("the platform tenant cannot be deleted")]
    PlatformTenant,
    /// Built-in roles keep their names and stay; the platform role does not change and
    /// is granted by bootstrap only (`BUILT_IN_ROLE`).
    #[error("{refusal}")]
    BuiltInRole {
        /// What is refused, for the caller.
        refusal: &'static str,
    },
    /// The tenant's last active admin keeps the admin role (`LAST_ADMIN`).
    #[error("the tenant's last active admin keeps the admin role")]
    LastAdmin,
    /// Login refused: an unknown email, a wrong password and an inactive account look
    /// the same (`INVALID_CREDENTIALS`).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// The refresh token is malformed, unknown, expired or revoked
    /// (`REFRESH_TOKEN_INVALID`).
    #[error("refresh token is invalid, expired or revoked")]
    RefreshTokenInvalid,
    /// The refresh token was used already: its family is revoked
    /// (`REFRESH_TOKEN_REUSED`).
    #[error("refresh token was already used; sign in again")]
    RefreshTokenReused,
    /// Too many failed logins for this account or source (`LOGIN_THROTTLED`).
    #[error("login throttled for {}s", retry_after.as_secs())]
    LoginThrottled {
        /// When the lock ends.
        retry_after: Duration,
    },
    /// A fault of identity's own (hashing a password, rotating a key): logged with its
    /// cause, returned opaque (`INTERNAL`).
    #[error("{context}")]
    Internal {
        /// What was being done.
        context: &'static str,
        /// Why it failed.
        #[source]
        cause: Box<dyn StdError + Send + Sync>,
    },
    /// What the database layer reported, with its own reason.
    #[error(transparent)]
    Db(#[from] fusion_db::Error),
}

/// Every reason identity gives, its own and those of the database layer its RPCs can
/// return. The token layer's reasons (`TOKEN_EXPIRED`, `TENANT_MISSING`, ...) belong to
/// `fusion-tenancy` and are not listed.
pub const REASONS: &[&str] = &[
    // Identity's own.
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "PERMISSION_DENIED",
    "SELF",
    "OWN_TENANT",
    "PLATFORM_TENANT",
    "BUILT_IN_ROLE",
    "LAST_ADMIN",
    "INVALID_CREDENTIALS",
    "REFRESH_TOKEN_INVALID",
    "REFRESH_TOKEN_REUSED",
    "LOGIN_THROTTLED",
    "INTERNAL",
    // The database layer's, through the standard methods.
    "REQUEST_ID_REUSED",
    "ALREADY_EXISTS",
    "NOT_DELETED",
    "ETAG_MISMATCH",
    "CONCURRENT_UPDATE",
    "UNAVAILABLE",
];

fn fields(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join(", ")
}

impl IdentityError {
    /// INVALID_ARGUMENT for one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldViolation::new(field, description)])
    }

    /// A fault while doing `context`, caused by `cause`.
    pub fn internal(
        context: &'static str,
        cause: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self::Internal {
            context,
            cause: cause.into(),
        }
    }

    /// The reason the caller sees in the status's `ErrorInfo`, UPPER_SNAKE_CASE.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "INVALID_ARGUMENT",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::PermissionDenied { .. } => "PERMISSION_DENIED",
            Self::SelfAction { .. } => "SELF",
            Self::OwnTenant => "OWN_TENANT",
            Self::PlatformTenant => "PLATFORM_TENANT",
            Self::BuiltInRole { .. } => "BUILT_IN_ROLE",
            Self::LastAdmin => "LAST_ADMIN",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::RefreshTokenInvalid => "REFRESH_TOKEN_INVALID",
            Self::RefreshTokenReused => "REFRESH_TOKEN_REUSED",
            Self::LoginThrottled { .. } => "LOGIN_THROTTLED",
            Self::Internal { .. } => "INTERNAL",
            Self::Db(e) => match e.kind() {
                Kind::NotFound(_) => "NOT_FOUND",
                Kind::Invalid(_) => "INVALID_ARGUMENT",
                Kind::InvalidBecause(reason, _) => reason,
                Kind::AlreadyExists { reason, .. }
                | Kind::Precondition { reason, .. }
                | Kind::Aborted { reason, .. } => reason,
                Kind::NoTenant => "TENANT_MISSING",
                Kind::Unavailable(..) => "UNAVAILABLE",
                Kind::Internal(_) => "INTERNAL",
            },
        }
    }
}

/// A `sqlx` error from identity's SQL, classified by the database layer (a unique
/// violation becomes `ALREADY_EXISTS` naming its field, a lost connection
/// `UNAVAILABLE`, ...).
impl From<sqlx::Error> for IdentityError {
    fn from(err: sqlx::Error) -> Self {
        Self::Db(fusion_db::Error::from_sqlx(DOMAIN, err))
    }
}

/// `cause` and every error below it, `a: b: c`.
fn chain(cause: &(dyn StdError + 'static)) -> String {
    let mut out = cause.to_string();
    let mut next = cause.source();
    while let Some(source) = next {
        out.push_str(": ");
        out.push_str(&source.to_string());
        next = source.source();
    }
    out
}

/// The one place identity's errors become statuses, under identity's domain.
impl From<IdentityError> for Status {
    fn from(err: IdentityError) -> Status {
        let reason = err.reason();
        let message = err.to_string();
        match err {
            IdentityError::Invalid(violations) => errors::invalid_argument(DOMAIN, violations),
            IdentityError::NotFound { .. } => errors::not_found(DOMAIN, message),
            IdentityError::PermissionDenied { permission } => errors::permission_denied(permission),
            IdentityError::SelfAction { .. }
            | IdentityError::OwnTenant
            | IdentityError::PlatformTenant
            | IdentityError::BuiltInRole { .. }
            | IdentityError::LastAdmin => errors::failed_precondition(DOMAIN, reason, message),
            IdentityError::InvalidCredentials
            | IdentityError::RefreshTokenInvalid
            | IdentityError::RefreshTokenReused => errors::unauthenticated(reason, message),
            IdentityError::LoginThrottled { retry_after } => {
                errors::resource_exhausted_with(DOMAIN, reason, retry_after)
            }
            IdentityError::Internal { context, cause } => {
                tracing::error!(error = %chain(cause.as_ref()), "{context}");
                errors::internal(DOMAIN)
            }
            IdentityError::Db(e) => e.into_status_in(DOMAIN),
        }
    }
}
