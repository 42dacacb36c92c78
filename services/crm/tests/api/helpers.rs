//! Spawning crm for a test beside the real identity and property it checks references
//! with, all on one fresh database, and acting as real users who logged in.

use std::sync::Arc;
use std::time::Duration;

use prost_types::FieldMask;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

use fusion_crm::{Application, CrmConfig};
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::{
    contact_service_client::ContactServiceClient, deal_service_client::DealServiceClient,
    lead_service_client::LeadServiceClient, note_service_client::NoteServiceClient,
    pipeline_service_client::PipelineServiceClient, task_service_client::TaskServiceClient,
};
use fusion_proto::crm::v1::{
    duplicate_service_client::DuplicateServiceClient, search_service_client::SearchServiceClient,
};
use fusion_proto::identity::v1 as idpb;
use fusion_proto::identity::v1::{
    auth_service_client::AuthServiceClient, role_service_client::RoleServiceClient,
    user_service_client::UserServiceClient,
};
use fusion_proto::property::v1 as proppb;
use fusion_service::ServiceConfig;
use fusion_tenancy::IdentityJwks;
use fusion_testkit::{TestDatabase, bind_ephemeral, connect_channel};

pub use fusion_testkit::{expect_code, reason, violated_fields};

/// Asserts `result` is INVALID_ARGUMENT naming exactly `fields` (in any order).
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug, F: AsRef<str>>(
    result: Result<T, Status>,
    fields: &[F],
) -> Status {
    let status = expect_code(result, Code::InvalidArgument);
    let mut named = violated_fields(&status);
    named.sort();
    let mut expected: Vec<&str> = fields.iter().map(AsRef::as_ref).collect();
    expected.sort_unstable();
    assert_eq!(named, expected, "the fields named by {status:?}");
    status
}

/// An update mask of `paths`.
pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// A select custom field `name` of `options` holding `value`.
pub fn select(name: &str, label: &str, options: &[&str], value: &str) -> pb::CustomField {
    pb::CustomField {
        name: name.into(),
        label: label.into(),
        r#type: "select".into(),
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        value: value.into(),
        values: vec![],
    }
}

/// The lead custom field the tests filter, merge and import on.
pub fn budget(value: &str) -> pb::CustomField {
    select(
        "budget",
        "Budget Range",
        &["100k-200k", "200k-300k", "300k+"],
        value,
    )
}

/// ConvertLead of lead `id`, asking for nothing else.
pub fn convert_lead(id: i64) -> pb::ConvertLeadRequest {
    pb::ConvertLeadRequest {
        id,
        ..Default::default()
    }
}

/// MergeLeads of `merged` into `survivor`, with no etag.
pub fn merge_leads(survivor: i64, merged: &[i64]) -> pb::MergeLeadsRequest {
    pb::MergeLeadsRequest {
        survivor_id: survivor,
        merged_ids: merged.to_vec(),
        ..Default::default()
    }
}

/// MergeContacts of `merged` into `survivor`, with no etag.
pub fn merge_contacts(survivor: i64, merged: &[i64]) -> pb::MergeContactsRequest {
    pb::MergeContactsRequest {
        survivor_id: survivor,
        merged_ids: merged.to_vec(),
        ..Default::default()
    }
}

/// WinDeal of deal `id`, in its first won stage today, without an etag.
pub fn win_deal(id: i64) -> pb::WinDealRequest {
    pb::WinDealRequest {
        id,
        ..Default::default()
    }
}

/// LoseDeal of deal `id` for `reason`, in its first lost stage today, without an etag.
pub fn lose_deal(id: i64, reason: &str) -> pb::LoseDealRequest {
    pb::LoseDealRequest {
        id,
        reason: reason.into(),
        ..Default::default()
    }
}

/// MoveDealStage of deal `id` to `stage`, without an etag.
pub fn move_deal(id: i64, stage: &str) -> pb::MoveDealStageRequest {
    pb::MoveDealStageRequest {
        id,
        stage: stage.into(),
        ..Default::default()
    }
}

/// What a crm call answers.
pub type Answer<T> = Result<T, Status>;

/// The message of a call's response.
fn answer<T>(response: Result<Response<T>, Status>) -> Answer<T> {
    response.map(Response::into_inner)
}

/// The standard methods of a crm resource, as the tests call them (through
/// [`TestApp::create`], [`TestApp::get`], ...), one implementation per message.
pub trait Standard: Sized {
    /// Create, without a request id.
    async fn create(app: &TestApp, who: &User, message: Self) -> Answer<Self>;
    /// Get.
    async fn get(app: &TestApp, who: &User, id: i64) -> Answer<Self>;
    /// Update under `mask`.
    async fn update(
        app: &TestApp,
        who: &User,
        message: Self,
        mask: Option<FieldMask>,
    ) -> Answer<Self>;
    /// Delete behind `etag` (empty: none).
    async fn delete(app: &TestApp, who: &User, id: i64, etag: &str) -> Answer<Self>;
    /// Undelete.
    async fn undelete(app: &TestApp, who: &User, id: i64) -> Answer<Self>;
}

impl Standard for pb::Lead {
    async fn create(app: &TestApp, who: &User, lead: Self) -> Answer<Self> {
        let request = pb::CreateLeadRequest {
            lead: Some(lead),
            request_id: String::new(),
        };
        answer(app.leads().create_lead(who.req(request)).await)
    }

    async fn get(app: &TestApp, who: &User, id: i64) -> Answer<Self> {
        let request = pb::GetLeadRequest { id };
        answer(app.leads().get_lead(who.req(request)).await)
    }

    async fn update(
        app: &TestApp,
        who: &User,
        lead: Self,
        mask: Option<FieldMask>,
    ) -> Answer<Self> {
        let request = pb::UpdateLeadRequest {
            lead: Some(lead),
            update_mask: mask,
        };
        answer(app.leads().update_lead(who.req(request)).await)
    }

    async fn delete(app: &TestApp, who: &User, id: i64, etag: &str) -> Answer<Self> {
        let etag = etag.into();
        let request = pb::DeleteLeadRequest { id, etag };
        answer(app.leads().delete_lead(who.req(request)).await)
    }

    async fn undelete(app: &TestApp, who: &User, id: i64) -> Answer<Self> {
        let request = pb::UndeleteLeadRequest { id };
        answer(app.leads().undelete_lead(who.req(request)).await)
    }
}

impl Standard for pb::Contact {
    async fn create(app: &TestApp, who: &User, contact: Self) -> Answer<Self> {
        let request = pb::CreateContactRequest {
            contact: Some(contact),
            request_id: String::new(),
        };
        answer(app.contacts().create_contact(who.req(request)).await)
    }

    async fn get(app: &TestApp, who: &User, id: i64) -> Answer<Self> {
        let request = pb::GetContactRequest { id };
        answer(app.contacts().get_contact(who.req(request)).await)
    }

    async fn update(
        app: &TestApp,
        who: &User,
        contact: Self,
        mask: Option<FieldMask>,
    ) -> Answer<Self> {
        let request = pb::UpdateContactRequest {
            contact: Some(contact),
            update_mask: mask,
        };
        answer(app.contacts().update_contact(who.req(request)).await)
    }

    async fn delete(app: &TestApp, who: &User, id: i64, etag: &str) -> Answer<Self> {
        let etag = etag.into();
        let request = pb::DeleteContactRequest { id, etag };
        answer(app.contacts().delete_contact(who.req(request)).await)
    }

    async fn undelete(app: &TestApp, who: &User, id: i64) -> Answer<Self> {
        let request = pb::UndeleteContactRequest { id };
        answer(app.contacts().undelete_contact(who.req(request)).await)
    }
}

impl Standard for pb::Deal {
    async fn create(app: &TestApp, who: &User, deal: Self) -> Answer<Self> {
        let request = pb::CreateDealRequest {
            deal: Some(deal),
            request_id: String::new(),
        };
        answer(app.deals().create_deal(who.req(request)).await)
    }

    async fn get(app: &TestApp, who: &User, id: i64) -> Answer<Self> {
        let request = pb::GetDealRequest { id };
        answer(app.deals().get_deal(who.req(request)).await)
    }

    async fn update(
        app: &TestApp,
        who: &User,
        deal: Self,
        mask: Option<FieldMask>,
    ) -> Answer<Self> {
        let request = pb::UpdateDealRequest {
            deal: Some(deal),
            update_mask: mask,
        };
        answer(app.deals().update_deal(who.req(request)).await)
    }

    async fn delete(app: &TestApp, who: &User, id: i64, etag: &str) -> Answer<Self> {
        let etag = etag.into();
        let request = pb::DeleteDealRequest { id, etag };
        answer(app.deals().delete_deal(who.req(request)).await)
    }

    async fn undelete(app: &TestApp, who: &User, id: i64) -> Answer<Self> {
        let request = pb::UndeleteDealRequest { id };
        answer(app.deals().undelete_deal(who.req(request)).await)
    }
}

impl Standard for pb::Task {
    async fn create(app: &TestApp, who: &User, task: Self) -> Answer<Self> {
        let request = pb::CreateTaskRequest {
            task: Some(task),
            request_id: String::new(),
        };
        answer(app.tasks().create_task(who.req(request)).await)
    }

    async fn get(app: &TestApp, who: &User, id: i64) -> Answer<Self> {
        let request = pb::GetTaskRequest { id };
        answer(app.tasks().get_task(who.req(request)).await)
    }

    async fn update(
        app: &TestApp,
        who: &User,
        task: Self,
        mask: Option<FieldMask>,
    ) -> Answer<Self> {
        let request = pb::UpdateTaskRequest {
            task: Some(task),
            update_mask: mask,
        };
        answer(app.tasks().update_task(who.req(request)).await)
    }

    async fn delete(app: &TestApp, who: &User, id: i64, etag: &str) -> Answer<Self> {
        let etag = etag.into();
        let request = pb::DeleteTaskRequest { id, etag };
        answer(app.tasks().delete_task(who.req(request)).await)
    }

    async fn undelete(app: &TestApp, who: &User, id: i64) -> Answer<Self> {
        let request = pb::UndeleteTaskRequest { id };
        answer(app.tasks().undelete_task(who.req(request)).await)
    }
}

impl Standard for pb::Note {
    async fn create(app: &TestApp, who: &User, note: Self) -> Answer<Self> {
        let request = pb::CreateNoteRequest {
            note: Some(note),
            request_id: String::new(),
        };
        answer(app.notes().create_note(who.req(request)).await)
    }

    async fn get(app: &TestApp, who: &User, id: i64) -> Answer<Self> {
        let request = pb::GetNoteRequest { id };
        answer(app.notes().get_note(who.req(request)).await)
    }

    async fn update(
        app: &TestApp,
        who: &User,
        note: Self,
        mask: Option<FieldMask>,
    ) -> Answer<Self> {
        let request = pb::UpdateNoteRequest {
            note: Some(note),
            update_mask: mask,
        };
        answer(app.notes().update_note(who.req(request)).await)
    }

    async fn delete(app: &TestApp, who: &User, id: i64, etag: &str) -> Answer<Self> {
        let etag = etag.into();
        let request = pb::DeleteNoteRequest { id, etag };
        answer(app.notes().delete_note(who.req(request)).await)
    }

    async fn undelete(app: &TestApp, who: &User, id: i64) -> Answer<Self> {
        let request = pb::UndeleteNoteRequest { id };
        answer(app.notes().undelete_note(who.req(request)).await)
    }
}

impl Standard for pb::LeadStatus {
    async fn create(app: &TestApp, who: &User, lead_status: Self) -> Answer<Self> {
        let request = pb::CreateLeadStatusRequest {
            lead_status: Some(lead_status),
            request_id: String::new(),
        };
        answer(app.pipeline().create_lead_status(who.req(request)).await)
    }

    async fn get(app: &TestApp, who: &User, id: i64) -> Answer<Self> {
        let request = pb::GetLeadStatusRequest { id };
        answer(app.pipeline().get_lead_status(who.req(request)).await)
    }

    async fn update(
        app: &TestApp,
        who: &User,
        lead_status: Self,
        mask: Option<FieldMask>,
    ) -> Answer<Self> {
        let request = pb::UpdateLeadStatusRequest {
            lead_status: Some(lead_status),
            update_mask: mask,
        };
        answer(app.pipeline().update_lead_status(who.req(request)).await)
    }

    async fn delete(app: &TestApp, who: &User, id: i64, etag: &str) -> Answer<Self> {
        let etag = etag.into();
        let request = pb::DeleteLeadStatusRequest { id, etag };
        answer(app.pipeline().delete_lead_status(who.req(request)).await)
    }

    async fn undelete(app: &TestApp, who: &User, id: i64) -> Answer<Self> {
        let request = pb::UndeleteLeadStatusRequest { id };
        answer(app.pipeline().undelete_lead_status(who.req(request)).await)
    }
}

impl Standard for pb::DealStage {
    async fn create(app: &TestApp, who: &User, deal_stage: Self) -> Answer<Self> {
        let request = pb::CreateDealStageRequest {
            deal_stage: Some(deal_stage),
            request_id: String::new(),
        };
        answer(app.pipeline().create_deal_stage(who.req(request)).await)
    }

    async fn get(app: &TestApp, who: &User, id: i64) -> Answer<Self> {
        let request = pb::GetDealStageRequest { id };
        answer(app.pipeline().get_deal_stage(who.req(request)).await)
    }

    async fn update(
        app: &TestApp,
        who: &User,
        deal_stage: Self,
        mask: Option<FieldMask>,
    ) -> Answer<Self> {
        let request = pb::UpdateDealStageRequest {
            deal_stage: Some(deal_stage),
            update_mask: mask,
        };
        answer(app.pipeline().update_deal_stage(who.req(request)).await)
    }

    async fn delete(app: &TestApp, who: &User, id: i64, etag: &str) -> Answer<Self> {
        let etag = etag.into();
        let request = pb::DeleteDealStageRequest { id, etag };
        answer(app.pipeline().delete_deal_stage(who.req(request)).await)
    }

    async fn undelete(app: &TestApp, who: &User, id: i64) -> Answer<Self> {
        let request = pb::UndeleteDealStageRequest { id };
        answer(app.pipeline().undelete_deal_stage(who.req(request)).await)
    }
}

/// A unary crm request, sent with [`TestApp::send`]: the call it makes and what it
/// answers.
pub trait Rpc {
    /// The response.
    type Reply;
    /// Sends the request as `who`.
    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply>;
}

impl Rpc for pb::ListLeadsRequest {
    type Reply = pb::ListLeadsResponse;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.leads().list_leads(who.req(self)).await)
    }
}

impl Rpc for pb::ListContactsRequest {
    type Reply = pb::ListContactsResponse;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.contacts().list_contacts(who.req(self)).await)
    }
}

impl Rpc for pb::ListDealsRequest {
    type Reply = pb::ListDealsResponse;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.deals().list_deals(who.req(self)).await)
    }
}

impl Rpc for pb::ListTasksRequest {
    type Reply = pb::ListTasksResponse;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.tasks().list_tasks(who.req(self)).await)
    }
}

impl Rpc for pb::ListNotesRequest {
    type Reply = pb::ListNotesResponse;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.notes().list_notes(who.req(self)).await)
    }
}

impl Rpc for pb::ListLeadStatusesRequest {
    type Reply = pb::ListLeadStatusesResponse;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.pipeline().list_lead_statuses(who.req(self)).await)
    }
}

impl Rpc for pb::ListDealStagesRequest {
    type Reply = pb::ListDealStagesResponse;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.pipeline().list_deal_stages(who.req(self)).await)
    }
}

impl Rpc for pb::AssignLeadRequest {
    type Reply = pb::Lead;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.leads().assign_lead(who.req(self)).await)
    }
}

impl Rpc for pb::SetLeadStatusRequest {
    type Reply = pb::Lead;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.leads().set_lead_status(who.req(self)).await)
    }
}

impl Rpc for pb::ConvertLeadRequest {
    type Reply = pb::ConvertLeadResponse;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.leads().convert_lead(who.req(self)).await)
    }
}

impl Rpc for pb::MergeLeadsRequest {
    type Reply = pb::MergeLeadsResponse;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.leads().merge_leads(who.req(self)).await)
    }
}

impl Rpc for pb::MergeContactsRequest {
    type Reply = pb::MergeContactsResponse;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.contacts().merge_contacts(who.req(self)).await)
    }
}

impl Rpc for pb::MoveDealStageRequest {
    type Reply = pb::Deal;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.deals().move_deal_stage(who.req(self)).await)
    }
}

impl Rpc for pb::WinDealRequest {
    type Reply = pb::Deal;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.deals().win_deal(who.req(self)).await)
    }
}

impl Rpc for pb::LoseDealRequest {
    type Reply = pb::Deal;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.deals().lose_deal(who.req(self)).await)
    }
}

impl Rpc for pb::GetCrmSettingsRequest {
    type Reply = pb::CrmSettings;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.pipeline().get_crm_settings(who.req(self)).await)
    }
}

impl Rpc for pb::UpdateCrmSettingsRequest {
    type Reply = pb::CrmSettings;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.pipeline().update_crm_settings(who.req(self)).await)
    }
}

impl Rpc for pb::SearchCrmRequest {
    type Reply = pb::SearchCrmResponse;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.search().search_crm(who.req(self)).await)
    }
}

impl Rpc for pb::FindDuplicatesRequest {
    type Reply = pb::FindDuplicatesResponse;

    async fn send(self, app: &TestApp, who: &User) -> Answer<Self::Reply> {
        answer(app.duplicates().find_duplicates(who.req(self)).await)
    }
}

impl TestApp {
    /// Creates `message` as `who`, without a request id.
    pub async fn create<R: Standard>(&self, who: &User, message: R) -> Answer<R> {
        R::create(self, who, message).await
    }

    /// Reads resource `id` as `who`.
    pub async fn get<R: Standard>(&self, who: &User, id: i64) -> Answer<R> {
        R::get(self, who, id).await
    }

    /// Updates the fields of `message` named in `paths` as `who`; no paths send no mask
    /// (the fields it sets change).
    pub async fn update<R: Standard>(&self, who: &User, message: R, paths: &[&str]) -> Answer<R> {
        let mask = if paths.is_empty() { None } else { mask(paths) };
        R::update(self, who, message, mask).await
    }

    /// Deletes resource `id` (behind `etag`; empty: none) as `who`.
    pub async fn delete<R: Standard>(&self, who: &User, id: i64, etag: &str) -> Answer<R> {
        R::delete(self, who, id, etag).await
    }

    /// Restores resource `id` as `who`.
    pub async fn undelete<R: Standard>(&self, who: &User, id: i64) -> Answer<R> {
        R::undelete(self, who, id).await
    }

    /// Sends `request` as `who`.
    pub async fn send<R: Rpc>(&self, who: &User, request: R) -> Answer<R::Reply> {
        request.send(self, who).await
    }
}

/// A task's status methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskMove {
    Start,
    Complete,
    Cancel,
    Reopen,
}

impl TaskMove {
    /// Sends the method for task `id` behind `etag` (empty: none) as `who`.
    pub async fn send(self, app: &TestApp, who: &User, id: i64, etag: &str) -> Answer<pb::Task> {
        self.send_with_id(app, who, id, etag.into(), String::new())
            .await
    }

    /// Sends the method for task `id` behind `etag` with `request_id` (empty: none).
    pub async fn send_with_id(
        self,
        app: &TestApp,
        who: &User,
        id: i64,
        etag: String,
        request_id: String,
    ) -> Answer<pb::Task> {
        let mut tasks = app.tasks();
        let answer = match self {
            TaskMove::Start => {
                let request = pb::StartTaskRequest {
                    id,
                    etag,
                    request_id,
                };
                tasks.start_task(who.req(request)).await
            }
            TaskMove::Complete => {
                let request = pb::CompleteTaskRequest {
                    id,
                    etag,
                    request_id,
                };
                tasks.complete_task(who.req(request)).await
            }
            TaskMove::Cancel => {
                let request = pb::CancelTaskRequest {
                    id,
                    etag,
                    request_id,
                };
                tasks.cancel_task(who.req(request)).await
            }
            TaskMove::Reopen => {
                let request = pb::ReopenTaskRequest {
                    id,
                    etag,
                    request_id,
                };
                tasks.reopen_task(who.req(request)).await
            }
        };
        answer.map(Response::into_inner)
    }
}

pub const PASSWORD: &str = "correct horse battery";

/// A user who logged in.
#[derive(Clone, Debug)]
pub struct User {
    pub tenant_id: i64,
    pub user_id: i64,
    pub token: String,
}

impl User {
    /// A request carrying the token and tenant header, as the edge would send it.
    pub fn req<T>(&self, message: T) -> Request<T> {
        let mut req = Request::new(message);
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        req.metadata_mut()
            .insert("x-tenant-id", self.tenant_id.to_string().parse().unwrap());
        req
    }
}

pub struct TestApp {
    // Held for the test's life: dropping them would stop identity and property.
    #[allow(dead_code)]
    pub db: TestDatabase,
    #[allow(dead_code)]
    pub identity: fusion_identity::Application,
    #[allow(dead_code)]
    pub property: fusion_property::Application,
    pub crm: Application,
    /// A channel to crm.
    pub channel: Channel,
    /// A channel to property, for creating the stock deals and notes point at.
    pub property_channel: Channel,
    /// Acme's admin.
    pub acme: User,
    /// Acme's sales agent.
    pub agent: User,
    /// Acme's viewer.
    pub viewer: User,
    /// Globex's admin.
    pub globex: User,
}

fn http(addr: std::net::SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a valid address")
        .connect_lazy()
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let db = TestDatabase::create(&[
            (fusion_identity::SCHEMA, &fusion_identity::MIGRATOR),
            (fusion_property::SCHEMA, &fusion_property::MIGRATOR),
            (fusion_crm::SCHEMA, &fusion_crm::MIGRATOR),
        ])
        .await;
        let identity = fusion_identity::Application::build(
            fusion_identity::IdentityConfig::with_defaults(ServiceConfig::local(
                "identity",
                db.app_url.clone(),
            )),
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("identity starts");
        for slug in ["acme", "globex"] {
            fusion_identity::bootstrap::ensure_tenant(
                &identity.state().db,
                slug,
                &format!("{slug} homes"),
                &format!("admin@{slug}.test"),
                PASSWORD,
            )
            .await
            .expect("tenant created");
        }
        let identity_channel = http(identity.grpc_addr());

        let mut property_config = fusion_property::PropertyConfig::with_defaults(
            ServiceConfig::local("property", db.app_url.clone()),
        );
        property_config.media_store = fusion_property::media_store::StoreConfig::Local {
            dir: std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("crm-media")
                .join(&db.name),
        };
        // Property asks crm about the deals holds and reservations are for, and crm
        // starts after it: crm's port is bound first.
        let crm_listener = bind_ephemeral().await;
        let property = fusion_property::Application::build(
            property_config,
            Arc::new(IdentityJwks::new(identity_channel.clone())),
            http(crm_listener.local_addr().expect("bound")),
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("property starts");
        let property_channel = http(property.grpc_addr());

        let crm = Self::replica_listening(
            &db,
            identity_channel,
            property_channel.clone(),
            |_| {},
            crm_listener,
        )
        .await;
        let channel = connect_channel(crm.grpc_addr()).await;
        let identity_client = connect_channel(identity.grpc_addr()).await;
        let acme = login(&identity_client, "admin@acme.test").await;
        let globex = login(&identity_client, "admin@globex.test").await;
        let agent = user_with_role(&identity_client, &acme, "agent@acme.test", "sales_agent").await;
        let viewer = user_with_role(&identity_client, &acme, "viewer@acme.test", "viewer").await;
        TestApp {
            db,
            identity,
            property,
            crm,
            channel,
            property_channel,
            acme,
            agent,
            viewer,
            globex,
        }
    }

    /// A crm replica over the same database.
    #[allow(dead_code)] // for tests that start a second replica
    pub async fn replica(db: &TestDatabase, identity: Channel, property: Channel) -> Application {
        Self::replica_with_nats(db, identity, property, None).await
    }

    /// A crm replica that relays its outbox to the NATS at `nats_url` (and consumes
    /// property's lot events from it).
    pub async fn replica_with_nats(
        db: &TestDatabase,
        identity: Channel,
        property: Channel,
        nats_url: Option<String>,
    ) -> Application {
        Self::replica_configured(db, identity, property, |config| {
            config.service.nats_url = nats_url;
        })
        .await
    }

    /// A crm replica over the same database (with the owner's URL, so it purges and
    /// relays), its configuration changed by `configure`.
    pub async fn replica_configured(
        db: &TestDatabase,
        identity: Channel,
        property: Channel,
        configure: impl FnOnce(&mut CrmConfig),
    ) -> Application {
        let grpc = bind_ephemeral().await;
        Self::replica_listening(db, identity, property, configure, grpc).await
    }

    /// [`TestApp::replica_configured`] serving gRPC on `grpc`.
    pub async fn replica_listening(
        db: &TestDatabase,
        identity: Channel,
        property: Channel,
        configure: impl FnOnce(&mut CrmConfig),
        grpc: tokio::net::TcpListener,
    ) -> Application {
        let mut service = ServiceConfig::local("crm", db.app_url.clone());
        service.migration_database_url = Some(db.owner_url.clone());
        service.shutdown_deadline = Duration::from_secs(2);
        let mut config = CrmConfig::with_defaults(service);
        configure(&mut config);
        Application::build(
            config,
            Arc::new(IdentityJwks::new(identity.clone())),
            identity,
            property,
            grpc,
            bind_ephemeral().await,
        )
        .await
        .expect("crm starts")
    }

    /// A crm replica over the same database that trusts `keys` (and not identity's
    /// keys), with a channel to it: for tokens the real identity does not mint, such as
    /// one naming the tenant's time zone. It still asks the real identity and property
    /// about references.
    pub async fn replica_trusting(
        &self,
        keys: &fusion_testkit::TestKeys,
    ) -> (Application, Channel) {
        let mut service = ServiceConfig::local("crm", self.db.app_url.clone());
        service.shutdown_deadline = Duration::from_secs(2);
        let crm = Application::build(
            CrmConfig::with_defaults(service),
            keys.provider.clone(),
            http(self.identity.grpc_addr()),
            self.property_channel.clone(),
            bind_ephemeral().await,
            bind_ephemeral().await,
        )
        .await
        .expect("crm replica starts");
        let channel = connect_channel(crm.grpc_addr()).await;
        (crm, channel)
    }

    /// A channel to identity.
    pub fn identity_channel(&self) -> Channel {
        http(self.identity.grpc_addr())
    }

    pub fn leads(&self) -> LeadServiceClient<Channel> {
        LeadServiceClient::new(self.channel.clone())
    }
    pub fn pipeline(&self) -> PipelineServiceClient<Channel> {
        PipelineServiceClient::new(self.channel.clone())
    }
    pub fn contacts(&self) -> ContactServiceClient<Channel> {
        ContactServiceClient::new(self.channel.clone())
    }
    pub fn deals(&self) -> DealServiceClient<Channel> {
        DealServiceClient::new(self.channel.clone())
    }
    pub fn tasks(&self) -> TaskServiceClient<Channel> {
        TaskServiceClient::new(self.channel.clone())
    }
    pub fn notes(&self) -> NoteServiceClient<Channel> {
        NoteServiceClient::new(self.channel.clone())
    }
    pub fn search(&self) -> SearchServiceClient<Channel> {
        SearchServiceClient::new(self.channel.clone())
    }
    pub fn duplicates(&self) -> DuplicateServiceClient<Channel> {
        DuplicateServiceClient::new(self.channel.clone())
    }

    /// Runs `sql` (binding the tenant as $1) in a transaction of `who`'s tenant, as the
    /// application role: for bulk set-up of rows whose API is tested elsewhere.
    pub async fn exec(&self, who: &User, sql: &str) {
        let db = self.crm.state().db.clone();
        let mut tx = db.begin(who.tenant_id).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(who.tenant_id)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    /// Creates a lead named `last_name` for `who`.
    pub async fn lead(&self, who: &User, last_name: &str) -> pb::Lead {
        let lead = pb::Lead {
            first_name: "Jo".into(),
            last_name: last_name.into(),
            email: format!("{}@example.com", last_name.to_lowercase()),
            ..Default::default()
        };
        self.create(who, lead).await.expect("lead created")
    }

    /// Creates a project → stage → lot for `who` in property; returns the lot id.
    pub async fn lot(&self, who: &User, slug: &str) -> i64 {
        use fusion_proto::property::v1::{
            lot_service_client::LotServiceClient, project_service_client::ProjectServiceClient,
            stage_service_client::StageServiceClient,
        };
        let project = ProjectServiceClient::new(self.property_channel.clone())
            .create_project(who.req(proppb::CreateProjectRequest {
                project: Some(proppb::Project {
                    name: format!("Project {slug}"),
                    slug: slug.into(),
                    status: "selling".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("project created")
            .into_inner();
        let stage = StageServiceClient::new(self.property_channel.clone())
            .create_stage(who.req(proppb::CreateStageRequest {
                stage: Some(proppb::Stage {
                    project_id: project.id,
                    name: "Stage 1".into(),
                    status: "selling".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("stage created")
            .into_inner();
        LotServiceClient::new(self.property_channel.clone())
            .create_lot(who.req(proppb::CreateLotRequest {
                lot: Some(proppb::Lot {
                    stage_id: stage.id,
                    lot_number: "1".into(),
                    price: "500000.00".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .expect("lot created")
            .into_inner()
            .id
    }
}

/// The response to `GET path` from the admin (health and metrics) server at `addr`.
pub async fn admin_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

async fn login(identity: &Channel, email: &str) -> User {
    let r = AuthServiceClient::new(identity.clone())
        .login(idpb::LoginRequest {
            email: email.into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("{email} logs in: {e:?}"))
        .into_inner();
    User {
        tenant_id: r.tenant_id,
        user_id: r.user_id,
        token: r.access_token,
    }
}

/// Creates `email` in `admin`'s tenant with the role named `role` and logs them in.
pub async fn user_with_role(identity: &Channel, admin: &User, email: &str, role: &str) -> User {
    let role_ids: Vec<i64> = RoleServiceClient::new(identity.clone())
        .list_roles(admin.req(idpb::ListRolesRequest {
            filter: format!("name = {role:?}"),
            ..Default::default()
        }))
        .await
        .expect("roles listed")
        .into_inner()
        .roles
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(role_ids.len(), 1, "role {role} exists");
    UserServiceClient::new(identity.clone())
        .create_user(admin.req(idpb::CreateUserRequest {
            user: Some(idpb::User {
                name: email.into(),
                email: email.into(),
                ..Default::default()
            }),
            password: PASSWORD.into(),
            role_ids,
            request_id: String::new(),
        }))
        .await
        .expect("user created");
    login(identity, email).await
}
