//! finance's store: every SQL statement of the context, one module per aggregate, and
//! what its resources share (request ids, field conversion). `grpc` calls down into
//! it; it never calls up.

pub(crate) mod commissions;
pub(crate) mod invoices;
pub(crate) mod plans;
pub(crate) mod settings;
pub(crate) mod xero;

use fusion_db::idempotency;
use fusion_db::resource::{self, Val, Values};
use fusion_proto::errors::FieldViolation;

use crate::DOMAIN;
use crate::error::FinanceError;

/// This context's request ids (AIP-155), kept seven days.
pub(crate) const REQUEST_IDS: idempotency::RequestIds =
    idempotency::RequestIds::new(DOMAIN, "finance.idempotency_keys");

/// Converts the fields named in `fields` into column values (see
/// [`resource::values_of`]).
pub(crate) fn values_of(
    prefix: &str,
    fields: &[&str],
    convert: impl FnMut(&str) -> Result<Option<(&'static str, Val)>, String>,
) -> Result<Values, FinanceError> {
    resource::values_of(DOMAIN, prefix, fields, convert).map_err(|e| match e.kind() {
        fusion_db::Kind::Invalid(violations) => FinanceError::Invalid(violations.clone()),
        _ => e.into(),
    })
}

/// Field violations from the domain's `(path, message)` problems, under `prefix`.
pub(crate) fn violations(prefix: &str, problems: Vec<(String, String)>) -> FinanceError {
    FinanceError::Invalid(
        problems
            .into_iter()
            .map(|(path, message)| FieldViolation::new(format!("{prefix}.{path}"), message))
            .collect(),
    )
}
