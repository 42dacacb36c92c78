//! The one mapping from database errors to gRPC statuses.

use fusion_proto::errors;
use sqlx::error::ErrorKind;
use tonic::Status;

/// Maps a database error to a status for `domain` (e.g. `identity.fusion`).
///
/// Messages never carry SQL text or values: a unique violation names only its
/// constraint, which migrations name after the field it protects
/// (`users_email_key` → "email"). Unexpected errors are logged here and returned opaque.
pub fn db_status(domain: &str, err: sqlx::Error) -> Status {
    match &err {
        sqlx::Error::RowNotFound => errors::not_found(domain, "not found"),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            tracing::warn!(error = %err, "database unavailable");
            errors::unavailable(domain, "database unavailable")
        }
        sqlx::Error::Database(db) => {
            let constraint = db.constraint().unwrap_or("").to_owned();
            match (db.kind(), db.code().as_deref()) {
                (ErrorKind::UniqueViolation, _) => errors::already_exists(
                    domain,
                    "ALREADY_EXISTS",
                    format!("{} already exists", field_of(&constraint)),
                ),
                (ErrorKind::ForeignKeyViolation, _) => errors::failed_precondition(
                    domain,
                    "REFERENCE_NOT_FOUND",
                    format!(
                        "{} refers to a missing or still-referenced row",
                        field_of(&constraint)
                    ),
                ),
                (ErrorKind::NotNullViolation | ErrorKind::CheckViolation, _) => {
                    errors::invalid_field(domain, &field_of(&constraint), "value is not allowed")
                }
                (_, Some("40001" | "40P01")) => {
                    errors::aborted(domain, "CONCURRENT_UPDATE", "concurrent update; retry")
                }
                (_, Some("57014")) => errors::unavailable(domain, "query cancelled"),
                (_, Some(code)) if code.starts_with("08") || code.starts_with("53") => {
                    tracing::warn!(error = %err, "database unavailable");
                    errors::unavailable(domain, "database unavailable")
                }
                _ => {
                    tracing::error!(error = %err, "database error");
                    errors::internal(domain)
                }
            }
        }
        _ => {
            tracing::error!(error = %err, "database error");
            errors::internal(domain)
        }
    }
}

/// `users_tenant_id_email_key` → `email`: constraints are named `<table>_<cols>_<kind>`;
/// strip the table and kind so only the field reaches the caller.
fn field_of(constraint: &str) -> String {
    let trimmed = constraint
        .trim_end_matches("_key")
        .trim_end_matches("_fkey")
        .trim_end_matches("_check")
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
    use super::field_of;

    #[test]
    fn constraint_names_become_field_names() {
        assert_eq!(field_of("users_tenant_id_email_key"), "email");
        assert_eq!(field_of("tenants_slug_key"), "slug");
        assert_eq!(field_of("role_user_tenant_id_user_id_fkey"), "user_id");
        assert_eq!(field_of(""), "value");
    }
}
