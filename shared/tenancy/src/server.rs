//! The server layer: authenticate, check the tenant header, check the permission, and
//! hand the handler a [`TenantContext`].

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use tonic::Status;
use tower::{Layer, Service};

use fusion_proto::errors;

use crate::headers::{REQUEST_ID, TENANT_ID, USER_ID, bearer_token};
use crate::policy::{Access, MethodPolicy};
use crate::{JwtVerifier, TenantContext, TokenLease};

/// Enforces tenant scoping on every non-public RPC of a server.
#[derive(Clone, Debug)]
pub struct TenantLayer {
    verifier: Arc<JwtVerifier>,
    policy: Arc<MethodPolicy>,
}

impl TenantLayer {
    /// A layer verifying tokens with `verifier` and permissions with `policy`.
    pub fn new(verifier: Arc<JwtVerifier>, policy: MethodPolicy) -> Self {
        Self {
            verifier,
            policy: Arc::new(policy),
        }
    }
}

impl<S> Layer<S> for TenantLayer {
    type Service = TenantService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TenantService {
            inner,
            verifier: self.verifier.clone(),
            policy: self.policy.clone(),
        }
    }
}

/// The service [`TenantLayer`] wraps around a server's routes.
#[derive(Clone, Debug)]
pub struct TenantService<S> {
    inner: S,
    verifier: Arc<JwtVerifier>,
    policy: Arc<MethodPolicy>,
}

impl<S, B> Service<Request<B>> for TenantService<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The ready service is the one to call; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let permissions = match self.policy.access(req.uri().path()) {
            Access::Public => return Box::pin(inner.call(req)),
            Access::Requires(permissions) => Some(permissions.to_vec()),
            Access::Undeclared => None,
        };
        let writes = self.policy.is_write(req.uri().path());
        let verifier = self.verifier.clone();
        let path = req.uri().path().to_owned();
        Box::pin(async move {
            let (ctx, read_only, lease) = match authenticate(&verifier, req.headers()).await {
                Ok(verified) => verified,
                Err(status) => return Ok(status.into_http()),
            };
            tracing::Span::current().record("tenant.id", ctx.tenant_id);
            let Some(permissions) = permissions else {
                tracing::error!(method = %path, "method has no declared permission; refusing");
                return Ok(errors::permission_denied(&format!("undeclared:{path}")).into_http());
            };
            // Every permission the method declares, before the handler runs (and before
            // the body is read): a refusal writes nothing and costs no decoding.
            // The refusal names the first missing (the method's own resource's first).
            if let Some(missing) = permissions.iter().find(|p| !ctx.has(p)) {
                return Ok(errors::permission_denied(missing).into_http());
            }
            if writes && read_only {
                return Ok(read_only_refusal().into_http());
            }
            req.extensions_mut().insert(ctx.clone());
            req.extensions_mut().insert(lease);
            ctx.scope(inner.call(req)).await
        })
    }
}

/// The reason a write in a read-only tenant is refused.
pub const TENANT_READ_ONLY: &str = "TENANT_READ_ONLY";

/// FAILED_PRECONDITION `TENANT_READ_ONLY`: the tenant's state (an expired trial), not
/// the caller's roles, refuses the change (API.md: a state that refuses is a
/// precondition); reads still work.
fn read_only_refusal() -> Status {
    errors::failed_precondition(
        errors::PLATFORM_DOMAIN,
        TENANT_READ_ONLY,
        "the tenant is read-only (its trial has ended); reads still work",
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Verifies the bearer token and the tenant/user headers against it: the caller,
/// whether its tenant is read-only now, and the token's lease (for streams that must
/// end with it).
pub(crate) async fn authenticate(
    verifier: &JwtVerifier,
    headers: &HeaderMap,
) -> Result<(TenantContext, bool, TokenLease), Status> {
    let token = bearer_token(headers)?;
    let claims = verifier.verify(token).await?;
    // The edge sets x-tenant-id from the verified token; a service requires it and
    // requires it to agree, so a request that skipped the edge with a forged header,
    // or a token replayed against another tenant, stops here.
    let tenant: i64 = header(headers, TENANT_ID)
        .ok_or_else(|| errors::unauthenticated("TENANT_MISSING", "x-tenant-id required"))?
        .parse()
        .map_err(|_| {
            errors::unauthenticated("TENANT_MISMATCH", "x-tenant-id does not match the token")
        })?;
    if tenant != claims.tid {
        return Err(errors::unauthenticated(
            "TENANT_MISMATCH",
            "x-tenant-id does not match the token",
        ));
    }
    let user_id: i64 = claims
        .sub
        .parse()
        .map_err(|_| errors::unauthenticated("TOKEN_INVALID", "invalid token"))?;
    if let Some(claimed_user) = header(headers, USER_ID)
        && claimed_user.parse::<i64>().ok() != Some(user_id)
    {
        return Err(errors::unauthenticated(
            "USER_MISMATCH",
            "x-user-id does not match the token",
        ));
    }
    let read_only = claims.read_only_at(jsonwebtoken::get_current_timestamp());
    let lease = TokenLease::new(claims.clone(), verifier.revocations().cloned());
    let ctx = TenantContext {
        tenant_id: claims.tid,
        user_id,
        roles: claims.roles,
        permissions: claims.perms.into_iter().collect(),
        request_id: header(headers, REQUEST_ID).map(str::to_owned),
        bearer: Some(token.to_owned()),
        time_zone: TenantContext::zone_of(claims.tz.as_deref()),
        service_account: claims.svc,
    };
    Ok((ctx, read_only, lease))
}
