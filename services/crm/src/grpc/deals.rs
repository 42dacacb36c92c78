//! `fusion.crm.v1.DealService` (being built: every method answers UNIMPLEMENTED until written).

use tonic::{Request, Response, Status};

use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::deal_service_server::DealService;

use crate::AppState;

/// The DealService implementation.
#[derive(Clone, Debug)]
pub(crate) struct DealApi {
    #[allow(dead_code)]
    state: AppState,
}

impl DealApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl DealService for DealApi {
    async fn create_deal(
        &self,
        _req: Request<pb::CreateDealRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        Err(Status::unimplemented("CreateDeal is not served yet"))
    }

    async fn get_deal(
        &self,
        _req: Request<pb::GetDealRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        Err(Status::unimplemented("GetDeal is not served yet"))
    }

    async fn list_deals(
        &self,
        _req: Request<pb::ListDealsRequest>,
    ) -> Result<Response<pb::ListDealsResponse>, Status> {
        Err(Status::unimplemented("ListDeals is not served yet"))
    }

    async fn update_deal(
        &self,
        _req: Request<pb::UpdateDealRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        Err(Status::unimplemented("UpdateDeal is not served yet"))
    }

    async fn delete_deal(
        &self,
        _req: Request<pb::DeleteDealRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        Err(Status::unimplemented("DeleteDeal is not served yet"))
    }

    async fn undelete_deal(
        &self,
        _req: Request<pb::UndeleteDealRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        Err(Status::unimplemented("UndeleteDeal is not served yet"))
    }

    async fn move_deal_stage(
        &self,
        _req: Request<pb::MoveDealStageRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        Err(Status::unimplemented("MoveDealStage is not served yet"))
    }

    async fn win_deal(
        &self,
        _req: Request<pb::WinDealRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        Err(Status::unimplemented("WinDeal is not served yet"))
    }

    async fn lose_deal(
        &self,
        _req: Request<pb::LoseDealRequest>,
    ) -> Result<Response<pb::Deal>, Status> {
        Err(Status::unimplemented("LoseDeal is not served yet"))
    }
}
