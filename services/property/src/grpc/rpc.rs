//! The tonic end of the standard methods for every property resource: Create, Get,
//! Update, Delete and Undelete are `fusion_service::rpc`'s; List is here, with the
//! List request and response of each resource listed once below.

use tonic::{Request, Response, Status};

use fusion_db::list::{ListParams, Page, Scope};
use fusion_proto::property::v1 as pb;
use fusion_service::api::total;
use fusion_service::standard::{self, Resource};
use fusion_tenancy::TenantContext;

pub(super) use fusion_service::rpc::{create, delete, get, undelete, update};

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

impl ListRequest for pb::ListDevelopersRequest {
    fn params(self) -> ListParams {
        ListParams::new(
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
        ListParams::new(
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
        ListParams::new(
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
        ListParams::new(
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
        ListParams::new(
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
        ListParams::new(
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
