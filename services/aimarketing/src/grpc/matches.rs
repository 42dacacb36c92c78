//! `fusion.aimarketing.v1.MatchService`: lots that fit a lead, read as the caller.

use tonic::{Request, Response, Status};

use fusion_proto::aimarketing::v1 as pb;
use fusion_proto::aimarketing::v1::match_service_server::MatchService;

use crate::grpc::{AiMarketingApi, parts, reply};

#[tonic::async_trait]
impl MatchService for AiMarketingApi {
    async fn match_lots_for_lead(
        &self,
        req: Request<pb::MatchLotsForLeadRequest>,
    ) -> Result<Response<pb::MatchLotsForLeadResponse>, Status> {
        let (_, r) = parts(req)?;
        reply(crate::matching::match_lots(&self.state, r).await)
    }
}
