//! The verified caller, as handlers see it.

use std::collections::BTreeSet;

use tonic::Status;

use fusion_proto::errors;

tokio::task_local! {
    static CURRENT: TenantContext;
}

/// Who is calling, verified by [`crate::TenantLayer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantContext {
    /// The tenant every statement of this request is bound to.
    pub tenant_id: i64,
    /// The calling user.
    pub user_id: i64,
    /// The user's role names.
    pub roles: Vec<String>,
    /// The user's permissions.
    pub permissions: BTreeSet<String>,
    /// The request id, echoed in logs and forwarded to other services.
    pub request_id: Option<String>,
    /// The raw bearer token, forwarded on calls to other services.
    pub bearer: Option<String>,
}

impl TenantContext {
    /// Whether the caller holds `permission`.
    pub fn has(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }

    /// PERMISSION_DENIED naming `permission` unless the caller holds it.
    pub fn require(&self, permission: &str) -> Result<(), Status> {
        if self.has(permission) {
            Ok(())
        } else {
            Err(errors::permission_denied(permission))
        }
    }

    /// The context the server layer attached to this request; UNAUTHENTICATED if the
    /// request did not pass through it (a public method, or a misconfigured server).
    pub fn from_request<T>(request: &tonic::Request<T>) -> Result<TenantContext, Status> {
        request
            .extensions()
            .get::<TenantContext>()
            .cloned()
            .ok_or_else(|| errors::unauthenticated("TOKEN_MISSING", "authentication required"))
    }

    /// The context of the request being handled on this task, if any.
    pub fn current() -> Option<TenantContext> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `fut` with `self` as [`TenantContext::current`].
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }
}
