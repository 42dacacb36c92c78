//! The tonic end of the standard methods, for any resource on the kit
//! ([`crate::standard`]): read the verified caller from the request, take the fields
//! the method needs, run the kit's flow and turn its error into a `Status` once.
//!
//! A service's handler names only what differs: its `Resource` and where its request
//! keeps the id, the etag or the resource, e.g.
//! `rpc::delete::<Developers, _>(&self.state, req, |r| (r.id, r.etag)).await`.
//! List stays with each service, whose request and response messages it names.

use tonic::{Request, Response, Status};

use prost_types::FieldMask;

use fusion_tenancy::TenantContext;

use crate::standard::{self, Resource};

/// Create, with the request id `request_id` reads from the request (AIP-155) and the
/// resource `resource` takes out of it (absent: all fields unset).
pub async fn create<R: Resource, M: prost::Message>(
    state: &R::State,
    req: Request<M>,
    request_id: fn(&M) -> &str,
    resource: fn(M) -> Option<R::Pb>,
) -> Result<Response<R::Pb>, Status>
where
    Status: From<R::Error>,
{
    let ctx = TenantContext::from_request(&req)?;
    let body = req.into_inner();
    let key = R::kit(state).request_key(request_id(&body), &body)?;
    let created = standard::create::<R>(state, &ctx, key, resource(body).unwrap_or_default());
    Ok(Response::new(created.await?))
}

/// Get of the row whose id `id` reads from the request.
pub async fn get<R: Resource, M>(
    state: &R::State,
    req: Request<M>,
    id: fn(&M) -> i64,
) -> Result<Response<R::Pb>, Status>
where
    Status: From<R::Error>,
{
    let ctx = TenantContext::from_request(&req)?;
    let found = standard::get::<R>(state, &ctx, id(req.get_ref()));
    Ok(Response::new(found.await?))
}

/// What an Update request carries: the resource with its new values, and the mask.
type UpdateParts<Pb> = (Option<Pb>, Option<FieldMask>);

/// Update of the resource `parts` takes out of the request, with its mask.
pub async fn update<R: Resource, M>(
    state: &R::State,
    req: Request<M>,
    parts: fn(M) -> UpdateParts<R::Pb>,
) -> Result<Response<R::Pb>, Status>
where
    Status: From<R::Error>,
{
    let ctx = TenantContext::from_request(&req)?;
    let (resource, mask) = parts(req.into_inner());
    let updated = standard::update::<R>(state, &ctx, resource.unwrap_or_default(), mask);
    Ok(Response::new(updated.await?))
}

/// Delete of the row whose id and etag `parts` takes out of the request.
pub async fn delete<R: Resource, M>(
    state: &R::State,
    req: Request<M>,
    parts: fn(M) -> (i64, String),
) -> Result<Response<R::Pb>, Status>
where
    Status: From<R::Error>,
{
    let ctx = TenantContext::from_request(&req)?;
    let (id, etag) = parts(req.into_inner());
    let deleted = standard::delete::<R>(state, &ctx, id, &etag);
    Ok(Response::new(deleted.await?))
}

/// Undelete of the row whose id `id` reads from the request.
pub async fn undelete<R: Resource, M>(
    state: &R::State,
    req: Request<M>,
    id: fn(&M) -> i64,
) -> Result<Response<R::Pb>, Status>
where
    Status: From<R::Error>,
{
    let ctx = TenantContext::from_request(&req)?;
    let restored = standard::undelete::<R>(state, &ctx, id(req.get_ref()));
    Ok(Response::new(restored.await?))
}
