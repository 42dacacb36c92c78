//! Metadata names (API.md, "Metadata").

/// `authorization: Bearer <jwt>`.
pub const AUTHORIZATION: &str = "authorization";
/// The verified tenant, set by the edge.
pub const TENANT_ID: &str = "x-tenant-id";
/// The verified user, set by the edge.
pub const USER_ID: &str = "x-user-id";
/// Correlates logs and responses.
pub const REQUEST_ID: &str = "x-request-id";
