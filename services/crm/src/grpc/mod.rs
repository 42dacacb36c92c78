//! The gRPC surface of crm: one module per service, the method policy, and what every
//! resource shares (idempotent create, lists, the tenant's pipeline, wire forms of
//! tags and custom fields). Proto types stop here.

mod contacts;
mod convert;
mod deals;
mod duplicates;
mod import;
mod leads;
mod notes;
mod pipeline;
mod search;
mod tasks;

use tonic::service::Routes;
use tonic::{Request, Status};

use fusion_proto::crm::v1::{
    contact_service_server::ContactServiceServer, deal_service_server::DealServiceServer,
    lead_service_server::LeadServiceServer, note_service_server::NoteServiceServer,
    pipeline_service_server::PipelineServiceServer, task_service_server::TaskServiceServer,
};
use fusion_proto::crm::v1::{
    duplicate_service_server::DuplicateServiceServer, search_service_server::SearchServiceServer,
};
use fusion_tenancy::{MethodPolicy, TenantContext};

use crate::{AppState, DOMAIN};

/// Checks of requests whose errors are statuses in this context's domain (errors below
/// this module are [`crate::CrmError`]s).
pub(crate) const API: fusion_service::api::Api = fusion_service::api::Api::new(DOMAIN);

/// Every crm service, ready to serve.
pub fn routes(state: &AppState) -> Routes {
    Routes::new(LeadServiceServer::new(leads::LeadApi::new(state.clone())))
        .add_service(ContactServiceServer::new(contacts::ContactApi::new(
            state.clone(),
        )))
        .add_service(DealServiceServer::new(deals::DealApi::new(state.clone())))
        .add_service(TaskServiceServer::new(tasks::TaskApi::new(state.clone())))
        .add_service(NoteServiceServer::new(notes::NoteApi::new(state.clone())))
        .add_service(PipelineServiceServer::new(pipeline::PipelineApi::new(
            state.clone(),
        )))
        .add_service(SearchServiceServer::new(search::SearchApi::new(
            state.clone(),
        )))
        .add_service(DuplicateServiceServer::new(duplicates::DuplicateApi::new(
            state.clone(),
        )))
}

/// The permission every crm RPC needs; the one place to read it. Standard reads need
/// `crm.<resource>.read`, every other method `crm.<resource>.write`; the pipeline's
/// statuses and stages are `crm.pipeline.*`.
pub fn policy() -> MethodPolicy {
    let services: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "LeadService",
            "leads",
            &["GetLead", "ListLeads", "ExportLeads"],
            &[
                "CreateLead",
                "UpdateLead",
                "DeleteLead",
                "UndeleteLead",
                "AssignLead",
                "SetLeadStatus",
                "ConvertLead",
                "MergeLeads",
                "ImportLeads",
            ],
        ),
        (
            "ContactService",
            "contacts",
            &["GetContact", "ListContacts"],
            &[
                "CreateContact",
                "UpdateContact",
                "DeleteContact",
                "UndeleteContact",
                "MergeContacts",
            ],
        ),
        (
            "DealService",
            "deals",
            &["GetDeal", "ListDeals"],
            &[
                "CreateDeal",
                "UpdateDeal",
                "DeleteDeal",
                "UndeleteDeal",
                "MoveDealStage",
                "WinDeal",
                "LoseDeal",
            ],
        ),
        (
            "TaskService",
            "tasks",
            &["GetTask", "ListTasks"],
            &[
                "CreateTask",
                "UpdateTask",
                "DeleteTask",
                "UndeleteTask",
                "StartTask",
                "CompleteTask",
                "CancelTask",
                "ReopenTask",
            ],
        ),
        (
            "NoteService",
            "notes",
            &["GetNote", "ListNotes"],
            &["CreateNote", "UpdateNote", "DeleteNote", "UndeleteNote"],
        ),
        (
            "PipelineService",
            "pipeline",
            &[
                "ListLeadStatuses",
                "GetLeadStatus",
                "ListDealStages",
                "GetDealStage",
                "GetCrmSettings",
            ],
            &[
                "CreateLeadStatus",
                "UpdateLeadStatus",
                "DeleteLeadStatus",
                "UndeleteLeadStatus",
                "CreateDealStage",
                "UpdateDealStage",
                "DeleteDealStage",
                "UndeleteDealStage",
                "UpdateCrmSettings",
            ],
        ),
    ];
    // Search and dedupe span resources: they need to read leads, and leave out (search)
    // or refuse (dedupe of contacts) what the caller may not read.
    let mut policy = MethodPolicy::new()
        .require("/fusion.crm.v1.SearchService/SearchCrm", "crm.leads.read")
        .require(
            "/fusion.crm.v1.DuplicateService/FindDuplicates",
            "crm.leads.read",
        );
    for (service, resource, reads, writes) in services {
        for method in *reads {
            policy = policy.require(
                &format!("/fusion.crm.v1.{service}/{method}"),
                &format!("crm.{resource}.read"),
            );
        }
        for method in *writes {
            policy = policy.require(
                &format!("/fusion.crm.v1.{service}/{method}"),
                &format!("crm.{resource}.write"),
            );
        }
    }
    policy
}

/// The verified caller.
pub(crate) fn caller<T>(req: &Request<T>) -> Result<TenantContext, Status> {
    TenantContext::from_request(req)
}
