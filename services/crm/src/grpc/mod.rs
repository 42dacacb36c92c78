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
use tonic::{Request, Response, Status};

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

/// The one implementation of every crm service (one `impl` per service, in its module).
#[derive(Clone, Debug)]
pub(crate) struct CrmApi {
    state: AppState,
}

/// Every crm service, ready to serve.
pub fn routes(state: &AppState) -> Routes {
    let api = CrmApi {
        state: state.clone(),
    };
    Routes::new(fusion_service::limited!(LeadServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(ContactServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(DealServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(TaskServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(NoteServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(PipelineServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(SearchServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(DuplicateServiceServer::new(api)))
}

/// The permissions every crm RPC needs; the one place to read them. Standard reads need
/// `crm.<resource>.read`, every other method `crm.<resource>.write`; the pipeline's
/// statuses and stages are `crm.pipeline.*`. A method that also creates or changes
/// other resources needs their write permissions too (the rule of
/// `fusion_tenancy::MethodPolicy`): see the end of this function. What depends on the
/// request (ConvertLead's deal, the record a note or task is on) is checked where the
/// request is read.
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
    // Methods that write beyond their own resource.
    policy
        // Creates a contact (and, when asked, a deal: checked in `convert`).
        .also_require(
            "/fusion.crm.v1.LeadService/ConvertLead",
            &["crm.contacts.write"],
        )
        // Re-points the merged leads' notes, tasks, deals and contacts to the survivor.
        .also_require(
            "/fusion.crm.v1.LeadService/MergeLeads",
            &[
                "crm.contacts.write",
                "crm.deals.write",
                "crm.notes.write",
                "crm.tasks.write",
            ],
        )
        // Re-points the merged contacts' notes, tasks, deals and converted leads.
        .also_require(
            "/fusion.crm.v1.ContactService/MergeContacts",
            &[
                "crm.deals.write",
                "crm.leads.write",
                "crm.notes.write",
                "crm.tasks.write",
            ],
        )
}

/// A request's verified caller and its message.
pub(crate) fn parts<T>(req: Request<T>) -> Result<(TenantContext, T), Status> {
    let ctx = TenantContext::from_request(&req)?;
    Ok((ctx, req.into_inner()))
}

/// A handler's answer: the message, or the error as a status.
pub(crate) fn reply<T, E: Into<Status>>(result: Result<T, E>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Into::into)
}

/// The start and end of custom methods that change one live row.
pub(crate) use fusion_service::custom::{Locked, lock, write};
