//! `fusion.finance.v1.XeroService`: the tenant's connection to its Xero organisation.
//! The work is in `crate::xero_sync::connection`; without Xero configured every method
//! is FAILED_PRECONDITION `XERO_NOT_CONFIGURED`.

use tonic::{Request, Response, Status};

use fusion_proto::finance::v1 as pb;
use fusion_proto::finance::v1::xero_service_server::XeroService;

use crate::grpc::{FinanceApi, parts, reply};
use crate::xero_sync::connection;

#[tonic::async_trait]
impl XeroService for FinanceApi {
    async fn start_xero_connection(
        &self,
        req: Request<pb::StartXeroConnectionRequest>,
    ) -> Result<Response<pb::StartXeroConnectionResponse>, Status> {
        let (ctx, _) = parts(req)?;
        reply(connection::start(&self.state, &ctx).await)
    }

    async fn complete_xero_connection(
        &self,
        req: Request<pb::CompleteXeroConnectionRequest>,
    ) -> Result<Response<pb::XeroConnection>, Status> {
        let (ctx, r) = parts(req)?;
        reply(connection::complete(&self.state, &ctx, &r.code, &r.state).await)
    }

    async fn get_xero_connection(
        &self,
        req: Request<pb::GetXeroConnectionRequest>,
    ) -> Result<Response<pb::XeroConnection>, Status> {
        let (ctx, _) = parts(req)?;
        reply(connection::get(&self.state, &ctx).await)
    }

    async fn disconnect_xero(
        &self,
        req: Request<pb::DisconnectXeroRequest>,
    ) -> Result<Response<pb::XeroConnection>, Status> {
        let (ctx, _) = parts(req)?;
        reply(connection::disconnect(&self.state, &ctx).await)
    }
}
