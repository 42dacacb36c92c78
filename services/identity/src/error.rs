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
        permission: String,
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
    /// IssueServiceToken refused: an unknown client id, a wrong or revoked secret, a
    /// deleted or inactive account and a deleted tenant look the same
    /// (`INVALID_CLIENT_CREDENTIALS`).
    #[error("invalid client id or secret")]
    InvalidClientCredentials,
    /// IssueServiceToken for another tenant: that tenant's system account for the
    /// service was deactivated or deleted by the tenant's admin
    /// (`SYSTEM_ACCOUNT_INACTIVE`).
    #[error("tenant {tenant_id} has deactivated or deleted this service's system account")]
    SystemAccountInactive {
        /// The tenant.
        tenant_id: i64,
    },
    /// A service account holds as many unrevoked secrets as it may (`SECRET_LIMIT`).
    #[error("a service account holds at most {max} unrevoked secrets; revoke one first")]
    SecretLimit {
        /// The limit.
        max: usize,
    },
    /// Too many failed logins for this account or source (`LOGIN_THROTTLED`).
    #[error("login throttled for {}s", retry_after.as_secs())]
    LoginThrottled {
        /// When the lock ends.
        retry_after: Duration,
    },
    /// Every password-hashing slot stayed busy for the configured wait
    /// (`HASHING_BUSY`): the caller may retry after `retry_after`.
    #[error("too many password checks at once; retry shortly")]
    HashingBusy {
        /// When to retry.
        retry_after: Duration,
    },
    /// The tenant's subscription is inactive: no new tokens for its users or service
    /// accounts (`TENANT_INACTIVE`).
    #[error("the tenant's subscription is inactive")]
    TenantInactive,
    /// The tenant's plan allows no more active users (`USER_LIMIT_REACHED`).
    #[error("the tenant's plan allows at most {max} active users")]
    UserLimitReached {
        /// The plan's limit.
        max: i32,
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
    "INVALID_CLIENT_CREDENTIALS",
    "SYSTEM_ACCOUNT_INACTIVE",
    "SECRET_LIMIT",
    "HASHING_BUSY",
    "TENANT_INACTIVE",
    "USER_LIMIT_REACHED",
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
            Self::InvalidClientCredentials => "INVALID_CLIENT_CREDENTIALS",
            Self::SystemAccountInactive { .. } => "SYSTEM_ACCOUNT_INACTIVE",
            Self::SecretLimit { .. } => "SECRET_LIMIT",
            Self::HashingBusy { .. } => "HASHING_BUSY",
            Self::TenantInactive => "TENANT_INACTIVE",
            Self::UserLimitReached { .. } => "USER_LIMIT_REACHED",
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
            IdentityError::PermissionDenied { permission } => {
                errors::permission_denied(&permission)
            }
            IdentityError::SelfAction { .. }
            | IdentityError::OwnTenant
            | IdentityError::PlatformTenant
            | IdentityError::BuiltInRole { .. }
            | IdentityError::LastAdmin
            | IdentityError::SystemAccountInactive { .. }
            | IdentityError::SecretLimit { .. }
            | IdentityError::TenantInactive
            | IdentityError::UserLimitReached { .. } => {
                errors::failed_precondition(DOMAIN, reason, message)
            }
            IdentityError::InvalidCredentials
            | IdentityError::InvalidClientCredentials
            | IdentityError::RefreshTokenInvalid
            | IdentityError::RefreshTokenReused => errors::unauthenticated(reason, message),
            IdentityError::LoginThrottled { retry_after }
            | IdentityError::HashingBusy { retry_after } => {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use fusion_db::error::Kind;
    use tonic::Status;
    use tonic_types::StatusExt;

    use super::{IdentityError, REASONS};
    use crate::DOMAIN;

    /// Fails to compile when a variant is added without a sample in [`one_of_each`].
    fn sampled(err: &IdentityError) {
        match err {
            IdentityError::Invalid(_)
            | IdentityError::NotFound { .. }
            | IdentityError::PermissionDenied { .. }
            | IdentityError::SelfAction { .. }
            | IdentityError::OwnTenant
            | IdentityError::PlatformTenant
            | IdentityError::BuiltInRole { .. }
            | IdentityError::LastAdmin
            | IdentityError::InvalidCredentials
            | IdentityError::RefreshTokenInvalid
            | IdentityError::RefreshTokenReused
            | IdentityError::LoginThrottled { .. }
            | IdentityError::InvalidClientCredentials
            | IdentityError::SystemAccountInactive { .. }
            | IdentityError::SecretLimit { .. }
            | IdentityError::HashingBusy { .. }
            | IdentityError::TenantInactive
            | IdentityError::UserLimitReached { .. }
            | IdentityError::Internal { .. }
            | IdentityError::Db(_) => {}
        }
    }

    fn db(kind: Kind) -> IdentityError {
        fusion_db::Error::new(DOMAIN, kind).into()
    }

    /// One error of each variant, and one of each database reason identity's RPCs give.
    fn one_of_each() -> Vec<IdentityError> {
        let message = || "m".to_owned();
        vec![
            IdentityError::invalid("name", "must not be empty"),
            IdentityError::NotFound {
                what: "user",
                id: 7,
            },
            IdentityError::PermissionDenied {
                permission: "platform.tenants.write".into(),
            },
            IdentityError::SelfAction { action: "delete" },
            IdentityError::OwnTenant,
            IdentityError::PlatformTenant,
            IdentityError::BuiltInRole {
                refusal: "built-in roles cannot be deleted",
            },
            IdentityError::LastAdmin,
            IdentityError::InvalidCredentials,
            IdentityError::RefreshTokenInvalid,
            IdentityError::RefreshTokenReused,
            IdentityError::LoginThrottled {
                retry_after: Duration::from_secs(30),
            },
            IdentityError::InvalidClientCredentials,
            IdentityError::SystemAccountInactive { tenant_id: 7 },
            IdentityError::SecretLimit { max: 5 },
            IdentityError::HashingBusy {
                retry_after: Duration::from_secs(1),
            },
            IdentityError::TenantInactive,
            IdentityError::UserLimitReached { max: 3 },
            IdentityError::internal("hashing a password failed", "out of memory"),
            db(Kind::InvalidBecause(
                fusion_db::idempotency::REUSED_REASON,
                Vec::new(),
            )),
            db(Kind::AlreadyExists {
                reason: "ALREADY_EXISTS",
                message: message(),
            }),
            db(Kind::AlreadyExists {
                reason: "NOT_DELETED",
                message: message(),
            }),
            db(Kind::Aborted {
                reason: "ETAG_MISMATCH",
                message: message(),
            }),
            db(Kind::Aborted {
                reason: "CONCURRENT_UPDATE",
                message: message(),
            }),
            db(Kind::Unavailable("database unavailable", None)),
        ]
    }

    /// The UPPER_SNAKE_CASE words of every `// Reasons:` line of identity's protos, and
    /// the RPCs whose comment has no such line.
    fn documented() -> (BTreeSet<String>, Vec<String>) {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../proto/fusion/identity/v1"
        );
        let mut reasons = BTreeSet::new();
        let mut undocumented = Vec::new();
        for entry in std::fs::read_dir(dir).expect("identity's proto directory") {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_none_or(|e| e != "proto") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a readable proto file");
            let mut listed_above = false;
            for line in text.lines().map(str::trim) {
                if let Some(list) = line.strip_prefix("// Reasons") {
                    listed_above = true;
                    let list = list.split_once(':').map_or("", |(_, l)| l);
                    reasons.extend(
                        list.split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                            .filter(|w| w.len() > 1)
                            .map(str::to_owned),
                    );
                } else if let Some(rpc) = line.strip_prefix("rpc ") {
                    if !listed_above {
                        undocumented.push(rpc.split('(').next().unwrap_or(rpc).to_owned());
                    }
                    listed_above = false;
                } else if !line.starts_with("//") {
                    listed_above = false;
                }
            }
        }
        (reasons, undocumented)
    }

    #[test]
    fn every_reason_is_listed_in_the_protos_and_every_listed_reason_is_in_the_catalogue() {
        let (documented, undocumented) = documented();
        assert!(
            undocumented.is_empty(),
            "RPCs without a `// Reasons:` line: {undocumented:?}"
        );
        let catalogue: BTreeSet<String> = REASONS.iter().map(|r| (*r).to_owned()).collect();
        assert_eq!(
            catalogue.len(),
            REASONS.len(),
            "REASONS lists a reason twice"
        );
        let missing: Vec<_> = catalogue.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "reasons no proto comment lists: {missing:?}"
        );
        let unknown: Vec<_> = documented.difference(&catalogue).collect();
        assert!(
            unknown.is_empty(),
            "proto comments list unknown reasons: {unknown:?}"
        );
    }

    #[test]
    fn reasons_lists_what_the_variants_give_and_each_status_carries_its_reason() {
        let mut given = BTreeSet::new();
        for err in one_of_each() {
            sampled(&err);
            let reason = err.reason();
            given.insert(reason);
            let status = Status::from(err);
            let info = status
                .get_details_error_info()
                .expect("every status carries ErrorInfo");
            assert_eq!(info.reason, reason, "{status:?}");
        }
        assert_eq!(given, REASONS.iter().copied().collect::<BTreeSet<_>>());
    }

    #[test]
    fn internal_causes_stay_in_the_log() {
        let status = Status::from(IdentityError::internal(
            "hashing a password failed",
            "the secret cause",
        ));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(status.message(), "internal error");
    }

    #[test]
    fn the_binaries_can_report_it_through_anyhow() {
        let err = anyhow::Error::from(IdentityError::RefreshTokenReused);
        assert_eq!(
            err.to_string(),
            "refresh token was already used; sign in again"
        );
    }

    #[test]
    fn the_domain_is_identitys() {
        let status = Status::from(IdentityError::LastAdmin);
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert_eq!(status.get_details_error_info().unwrap().domain, DOMAIN);
        assert_eq!(
            status.message(),
            "the tenant's last active admin keeps the admin role"
        );
    }
}
