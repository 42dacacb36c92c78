//! The tonic end of the standard methods, shared by every property resource: read the
//! verified caller from the request, take the fields the method needs, run the kit's
//! flow (`fusion_service::standard`) and turn its error into a `Status` once.
//!
//! A resource's handler names only what differs: its `Resource` and where its request
//! keeps the id, the etag or the resource. The List request and response of each
//! resource are listed once below.

use tonic::{Request, Response, Status};

use prost_types::FieldMask;

use fusion_db::list::{ListParams, Page, Scope};
use fusion_proto::property::v1 as pb;
use fusion_service::api::total;
use fusion_service::standard::{self, Resource};
use fusion_tenancy::TenantContext;

/// Create, with the request id `request_id` reads from the request (AIP-155) and the
/// resource `resource` takes out of it (absent: all fields unset).
pub(super) async fn create<R: Resource, M: prost::Message>(
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
pub(super) async fn get<R: Resource, M>(
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

/// List, unscoped: one page of the caller's tenant.
pub(super) async fn list<R: Resource, M: ListRequest, L: ListResponse<R::Pb>>(
    state: &R::State,
    req: Request<M>,
) -> Result<Response<L>, Status>
where
    Status: From<R::Error>,
{
    let ctx = TenantContext::from_request(&req)?;
    page::<R, M, L>(state, &ctx, req.into_inner(), None).await
}

/// One page of List request `r` of the caller's tenant, within `scope` (the parent
/// the request names, read by the handler).
pub(super) async fn page<R: Resource, M: ListRequest, L: ListResponse<R::Pb>>(
    state: &R::State,
    ctx: &TenantContext,
    r: M,
    scope: Option<Scope<'_>>,
) -> Result<Response<L>, Status>
where
    Status: From<R::Error>,
{
    let page = standard::list::<R>(state, ctx, &r.params(), scope).await?;
    Ok(Response::new(L::from_page(page)))
}

/// What an Update request carries: the resource with its new values, and the mask.
type UpdateParts<Pb> = (Option<Pb>, Option<FieldMask>);

/// Update of the resource `parts` takes out of the request, with its mask.
pub(super) async fn update<R: Resource, M>(
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
pub(super) async fn delete<R: Resource, M>(
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
pub(super) async fn undelete<R: Resource, M>(
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

/// A List request: the standard paging, filter and order fields (AIP-132/158/160).
pub(super) trait ListRequest {
    /// The fields as the kit reads them.
    fn params(self) -> ListParams;
}

/// A List response: one page of `Pb`.
pub(super) trait ListResponse<Pb> {
    /// The response carrying `page`.
    fn from_page(page: Page<Pb>) -> Self;
}

/// The standard fields of a List request, whichever resource it lists.
fn params(
    page_size: i32,
    token: String,
    filter: String,
    order_by: String,
    deleted: bool,
) -> ListParams {
    ListParams::new(page_size, token, filter, order_by, deleted)
}

impl ListRequest for pb::ListDevelopersRequest {
    fn params(self) -> ListParams {
        params(
            self.page_size,
            self.page_token,
            self.filter,
            self.order_by,
            self.show_deleted,
        )
    }
}

impl ListRequest for pb::ListFeaturesRequest {
    fn params(self) -> ListParams {
        params(
            self.page_size,
            self.page_token,
            self.filter,
            self.order_by,
            self.show_deleted,
        )
    }
}

impl ListRequest for pb::ListProjectsRequest {
    fn params(self) -> ListParams {
        params(
            self.page_size,
            self.page_token,
            self.filter,
            self.order_by,
            self.show_deleted,
        )
    }
}

impl ListRequest for pb::ListStagesRequest {
    fn params(self) -> ListParams {
        params(
            self.page_size,
            self.page_token,
            self.filter,
            self.order_by,
            self.show_deleted,
        )
    }
}

impl ListRequest for pb::ListLotsRequest {
    fn params(self) -> ListParams {
        params(
            self.page_size,
            self.page_token,
            self.filter,
            self.order_by,
            self.show_deleted,
        )
    }
}

impl ListRequest for pb::ListMediaRequest {
    fn params(self) -> ListParams {
        params(
            self.page_size,
            self.page_token,
            self.filter,
            self.order_by,
            self.show_deleted,
        )
    }
}

impl ListResponse<pb::Developer> for pb::ListDevelopersResponse {
    fn from_page(page: Page<pb::Developer>) -> Self {
        let (developers, next_page_token) = (page.items, page.next_page_token);
        let total_size = total(page.total_size);
        Self {
            developers,
            next_page_token,
            total_size,
        }
    }
}

impl ListResponse<pb::Feature> for pb::ListFeaturesResponse {
    fn from_page(page: Page<pb::Feature>) -> Self {
        let (features, next_page_token) = (page.items, page.next_page_token);
        let total_size = total(page.total_size);
        Self {
            features,
            next_page_token,
            total_size,
        }
    }
}

impl ListResponse<pb::Project> for pb::ListProjectsResponse {
    fn from_page(page: Page<pb::Project>) -> Self {
        let (projects, next_page_token) = (page.items, page.next_page_token);
        let total_size = total(page.total_size);
        Self {
            projects,
            next_page_token,
            total_size,
        }
    }
}

impl ListResponse<pb::Stage> for pb::ListStagesResponse {
    fn from_page(page: Page<pb::Stage>) -> Self {
        let (stages, next_page_token) = (page.items, page.next_page_token);
        let total_size = total(page.total_size);
        Self {
            stages,
            next_page_token,
            total_size,
        }
    }
}

impl ListResponse<pb::Lot> for pb::ListLotsResponse {
    fn from_page(page: Page<pb::Lot>) -> Self {
        let (lots, next_page_token) = (page.items, page.next_page_token);
        let total_size = total(page.total_size);
        Self {
            lots,
            next_page_token,
            total_size,
        }
    }
}

impl ListResponse<pb::Media> for pb::ListMediaResponse {
    fn from_page(page: Page<pb::Media>) -> Self {
        let (media, next_page_token) = (page.items, page.next_page_token);
        let total_size = total(page.total_size);
        Self {
            media,
            next_page_token,
            total_size,
        }
    }
}
