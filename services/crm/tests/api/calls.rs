//! Calling crm as the tests do: `app.create(who, lead)`, `app.get::<pb::Lead>(who, id)`,
//! `app.update(...)`, `app.delete(...)`, `app.undelete(...)` for the standard methods
//! of every resource, `app.send(who, request)` for any other unary request, and
//! builders of the requests the tests send most.

use prost_types::FieldMask;
use tonic::transport::Channel;
use tonic::{Response, Status};

use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::{
    contact_service_client::ContactServiceClient, deal_service_client::DealServiceClient,
    lead_service_client::LeadServiceClient, note_service_client::NoteServiceClient,
    pipeline_service_client::PipelineServiceClient, task_service_client::TaskServiceClient,
};
use fusion_proto::crm::v1::{
    duplicate_service_client::DuplicateServiceClient, search_service_client::SearchServiceClient,
};

use crate::helpers::{TestApp, User, mask};

/// A lead named `first` `last`, reached at `email` and `phone` (each may be empty).
pub fn reachable_lead(first: &str, last: &str, email: &str, phone: &str) -> pb::Lead {
    pb::Lead {
        first_name: first.into(),
        last_name: last.into(),
        email: email.into(),
        phone: phone.into(),
        ..Default::default()
    }
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
