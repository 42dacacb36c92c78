//! The tonic end of the standard methods for every identity resource: Create, Get,
//! Update, Delete and Undelete are `fusion_service::rpc`'s; List is here, with the
//! List request and response of each resource listed once below.

use tonic::{Request, Response, Status};

use fusion_db::list::{ListParams, Page};
use fusion_proto::identity::v1 as pb;
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
    let params = req.into_inner().params();
    let page = standard::list::<R>(state, &ctx, &params, None).await?;
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

impl ListRequest for pb::ListTenantsRequest {
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

impl ListRequest for pb::ListPlansRequest {
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

impl ListRequest for pb::ListUsersRequest {
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

impl ListRequest for pb::ListRolesRequest {
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

impl ListRequest for pb::ListServiceAccountsRequest {
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

impl ListResponse<pb::Tenant> for pb::ListTenantsResponse {
    fn from_page(page: Page<pb::Tenant>) -> Self {
        let (tenants, next_page_token) = (page.items, page.next_page_token);
        let total_size = total(page.total_size);
        Self {
            tenants,
            next_page_token,
            total_size,
        }
    }
}

impl ListResponse<pb::Plan> for pb::ListPlansResponse {
    fn from_page(page: Page<pb::Plan>) -> Self {
        let (plans, next_page_token) = (page.items, page.next_page_token);
        let total_size = total(page.total_size);
        Self {
            plans,
            next_page_token,
            total_size,
        }
    }
}

impl ListResponse<pb::User> for pb::ListUsersResponse {
    fn from_page(page: Page<pb::User>) -> Self {
        let (users, next_page_token) = (page.items, page.next_page_token);
        let total_size = total(page.total_size);
        Self {
            users,
            next_page_token,
            total_size,
        }
    }
}

impl ListResponse<pb::Role> for pb::ListRolesResponse {
    fn from_page(page: Page<pb::Role>) -> Self {
        let (roles, next_page_token) = (page.items, page.next_page_token);
        let total_size = total(page.total_size);
        Self {
            roles,
            next_page_token,
            total_size,
        }
    }
}

impl ListResponse<pb::ServiceAccount> for pb::ListServiceAccountsResponse {
    fn from_page(page: Page<pb::ServiceAccount>) -> Self {
        let (service_accounts, next_page_token) = (page.items, page.next_page_token);
        let total_size = total(page.total_size);
        Self {
            service_accounts,
            next_page_token,
            total_size,
        }
    }
}
