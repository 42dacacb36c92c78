//! Assertions on gRPC statuses, shared by every service's API tests.

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// Asserts the status code and returns the status for further checks.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Ok(v) => panic!("expected {code:?}, got Ok({v:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            status
        }
    }
}

/// The fields named by a status's BadRequest violations.
pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// Asserts `result` is INVALID_ARGUMENT naming exactly `fields` (in any order) and
/// returns the status.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug, F: AsRef<str>>(
    result: Result<T, Status>,
    fields: &[F],
) -> Status {
    let status = expect_code(result, Code::InvalidArgument);
    let mut named = violated_fields(&status);
    named.sort();
    let mut expected: Vec<&str> = fields.iter().map(AsRef::as_ref).collect();
    expected.sort_unstable();
    assert_eq!(named, expected, "the fields named by {status:?}");
    status
}

/// An update mask of `paths`.
pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}
