//! The gRPC surface of ai-marketing: one module per service, the method policy, and
//! what every handler shares. Proto types stop here.
//!
//! Only services whose every method is implemented are served ([`SERVED`]); the
//! others of the package are in the contract and the policy, and answer UNIMPLEMENTED
//! until they are (today every service of the package is served).

mod campaigns;
mod conversations;
mod matches;
mod prompts;
mod settings;

use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

use fusion_proto::aimarketing::v1::{
    ai_settings_service_server::AiSettingsServiceServer,
    campaign_service_server::CampaignServiceServer,
    conversation_service_server::ConversationServiceServer,
    match_service_server::MatchServiceServer, prompt_service_server::PromptServiceServer,
};
use fusion_tenancy::{MethodPolicy, TenantContext};

use crate::AppState;

/// The one implementation of every ai-marketing service (one `impl` per service, in
/// its module).
#[derive(Clone, Debug)]
pub(crate) struct AiMarketingApi {
    state: AppState,
}

/// The full names of the services [`routes`] serves.
pub const SERVED: &[&str] = &[
    <PromptServiceServer<AiMarketingApi> as NamedService>::NAME,
    <CampaignServiceServer<AiMarketingApi> as NamedService>::NAME,
    <ConversationServiceServer<AiMarketingApi> as NamedService>::NAME,
    <AiSettingsServiceServer<AiMarketingApi> as NamedService>::NAME,
    <MatchServiceServer<AiMarketingApi> as NamedService>::NAME,
];

/// Every served ai-marketing service, ready to serve.
pub fn routes(state: &AppState) -> Routes {
    let api = AiMarketingApi {
        state: state.clone(),
    };
    Routes::new(fusion_service::limited!(PromptServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(CampaignServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(ConversationServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(AiSettingsServiceServer::new(
        api.clone()
    )))
    .add_service(fusion_service::limited!(MatchServiceServer::new(api)))
}

/// The permissions every ai-marketing RPC needs, served or not; the one place to read
/// them. Reads need `.read`, every other method `.write`:
///
/// - prompts (rendering included) are `aimarketing.prompts.*`;
/// - conversations, their messages, the AI settings and usage are
///   `aimarketing.conversations.*`; changing the tenant's provider (where its
///   conversations are sent, with which key) is an administrator's act and needs
///   `identity.tenants.write` too;
/// - campaigns and their leads are `aimarketing.campaigns.*`; adding leads reads them
///   from crm as the caller, so it needs `crm.leads.read` too (refused here, before
///   crm is asked);
/// - matching lots to a lead stores nothing of ai-marketing's: it reads a lead and
///   lots as the caller, and needs exactly `crm.leads.read` and `property.lots.read`
///   (so a sales agent, who holds no ai-marketing permission, may use it); the lots'
///   projects are read too when the lead names places, and a caller who may not read
///   them gets no location points.
pub fn policy() -> MethodPolicy {
    let services: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "PromptService",
            "prompts",
            &[
                "GetPrompt",
                "ListPrompts",
                "ListPromptVersions",
                "RenderPrompt",
            ],
            &[
                "CreatePrompt",
                "UpdatePrompt",
                "DeletePrompt",
                "UndeletePrompt",
                "CopyPrompt",
            ],
        ),
        (
            "ConversationService",
            "conversations",
            &["GetConversation", "ListConversations", "ListMessages"],
            &[
                "CreateConversation",
                "UpdateConversation",
                "DeleteConversation",
                "UndeleteConversation",
                "SendMessage",
            ],
        ),
        (
            "AiSettingsService",
            "conversations",
            &["GetAiSettings", "GetAiUsage"],
            &["UpdateAiSettings"],
        ),
        (
            "CampaignService",
            "campaigns",
            &["GetCampaign", "ListCampaigns", "ListCampaignLeads"],
            &[
                "CreateCampaign",
                "UpdateCampaign",
                "DeleteCampaign",
                "UndeleteCampaign",
                "ScheduleCampaign",
                "StartCampaign",
                "PauseCampaign",
                "ResumeCampaign",
                "CompleteCampaign",
                "CancelCampaign",
                "AddCampaignLeads",
                "RemoveCampaignLeads",
            ],
        ),
    ];
    let path = |service: &str, method: &str| format!("/fusion.aimarketing.v1.{service}/{method}");
    let mut policy = MethodPolicy::new();
    for (service, resource, reads, writes) in services {
        for method in *reads {
            policy = policy.require(
                &path(service, method),
                &format!("aimarketing.{resource}.read"),
            );
        }
        for method in *writes {
            policy = policy.require(
                &path(service, method),
                &format!("aimarketing.{resource}.write"),
            );
        }
    }
    policy
        .also_require(
            &path("AiSettingsService", "UpdateAiSettings"),
            &["identity.tenants.write"],
        )
        .also_require(
            &path("CampaignService", "AddCampaignLeads"),
            &["crm.leads.read"],
        )
        .require_all(
            &path("MatchService", "MatchLotsForLead"),
            &["crm.leads.read", "property.lots.read"],
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
