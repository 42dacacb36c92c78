//! Metadata names (API.md, "Metadata"), and reading the bearer token.

use http::HeaderMap;
use tonic::Status;

use fusion_proto::errors;

/// `authorization: Bearer <jwt>`.
pub const AUTHORIZATION: &str = "authorization";
/// The verified tenant, set by the edge.
pub const TENANT_ID: &str = "x-tenant-id";
/// The verified user, set by the edge.
pub const USER_ID: &str = "x-user-id";
/// Correlates logs and responses.
pub const REQUEST_ID: &str = "x-request-id";

/// The token of `authorization: Bearer <token>`, or UNAUTHENTICATED (`TOKEN_MISSING`).
/// The edge and every service's tenancy layer read it here, so both accept the same
/// forms: `Bearer` or `bearer`, surrounding spaces trimmed, never an empty token.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Status> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            errors::unauthenticated("TOKEN_MISSING", "authorization: Bearer <token> required")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(value: Option<&str>) -> Result<String, String> {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(AUTHORIZATION, value.parse().unwrap());
        }
        bearer_token(&headers).map(str::to_owned).map_err(|status| {
            let info = tonic_types::StatusExt::get_details_error_info(&status).unwrap();
            format!("{:?} {}", status.code(), info.reason)
        })
    }

    #[test]
    fn a_bearer_token_is_read_from_either_spelling_of_the_scheme() {
        assert_eq!(token(Some("Bearer abc.def")), Ok("abc.def".into()));
        assert_eq!(token(Some("bearer abc.def")), Ok("abc.def".into()));
        assert_eq!(token(Some("Bearer   abc.def  ")), Ok("abc.def".into()));
    }

    #[test]
    fn no_token_an_empty_one_or_another_scheme_is_token_missing() {
        let missing = Err("Unauthenticated TOKEN_MISSING".to_owned());
        assert_eq!(token(None), missing);
        assert_eq!(token(Some("Bearer ")), missing);
        assert_eq!(token(Some("Bearer    ")), missing);
        assert_eq!(token(Some("Basic dXNlcjpwdw==")), missing);
        assert_eq!(token(Some("BEARER abc")), missing);
        assert_eq!(token(Some("abc.def")), missing);
    }
}
