//! `fusion.aimarketing.v1.ConversationService`: the standard methods for conversations
//! (on the shared kit), a conversation's messages, and SendMessage, which streams the
//! model's reply (see `conversation::send`).

use tonic::{Request, Response, Status};

use fusion_db::list::{ListParams, ScopeValue};
use fusion_proto::aimarketing::v1 as pb;
use fusion_proto::aimarketing::v1::conversation_service_server::ConversationService;
use fusion_service::api::total;
use fusion_service::standard;
use fusion_tenancy::LeasedStream;

use crate::conversation::send;
use crate::error::AiMarketingError;
use crate::grpc::{AiMarketingApi, parts, reply};
use crate::store::conversations::{self, Conversations, MESSAGES, MessageRow};

#[tonic::async_trait]
impl ConversationService for AiMarketingApi {
    async fn create_conversation(
        &self,
        req: Request<pb::CreateConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let conversation = r.conversation.unwrap_or_default();
        reply(standard::create::<Conversations>(&self.state, &ctx, key, conversation).await)
    }

    async fn get_conversation(
        &self,
        req: Request<pb::GetConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::get::<Conversations>(&self.state, &ctx, r.id).await)
    }

    async fn list_conversations(
        &self,
        req: Request<pb::ListConversationsRequest>,
    ) -> Result<Response<pb::ListConversationsResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let page = standard::list::<Conversations>(&self.state, &ctx, &params, None).await?;
        Ok(Response::new(pb::ListConversationsResponse {
            conversations: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_conversation(
        &self,
        req: Request<pb::UpdateConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let (ctx, r) = parts(req)?;
        let conversation = r.conversation.unwrap_or_default();
        reply(
            standard::update::<Conversations>(&self.state, &ctx, conversation, r.update_mask).await,
        )
    }

    async fn delete_conversation(
        &self,
        req: Request<pb::DeleteConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::delete::<Conversations>(&self.state, &ctx, r.id, &r.etag).await)
    }

    async fn undelete_conversation(
        &self,
        req: Request<pb::UndeleteConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::undelete::<Conversations>(&self.state, &ctx, r.id).await)
    }

    async fn list_messages(
        &self,
        req: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let kit = &self.state.kit;
        kit.api.require_id("conversation_id", r.conversation_id)?;
        let result = async {
            // The conversation must be live in the caller's tenant.
            let mut tx = kit.db.begin(ctx.tenant_id).await?;
            conversations::live(&mut tx, r.conversation_id).await?;
            tx.commit().await?;
            let params = ListParams::new(
                r.page_size,
                r.page_token,
                String::new(),
                String::new(),
                false,
            );
            let scope = [("conversation_id", ScopeValue::Int(r.conversation_id))];
            let page = fusion_db::list::tenant_page::<MessageRow>(
                &kit.db,
                kit.api.domain(),
                &MESSAGES,
                &params,
                &kit.pages,
                ctx.tenant_id,
                Some(&scope),
            )
            .await?;
            Ok::<_, AiMarketingError>(pb::ListMessagesResponse {
                messages: page
                    .items
                    .into_iter()
                    .map(conversations::message_pb)
                    .collect(),
                next_page_token: page.next_page_token,
                total_size: total(page.total_size),
            })
        };
        reply(result.await)
    }

    type SendMessageStream = LeasedStream<pb::SendMessageResponse>;

    async fn send_message(
        &self,
        req: Request<pb::SendMessageRequest>,
    ) -> Result<Response<Self::SendMessageStream>, Status> {
        let ctx = fusion_tenancy::TenantContext::from_request(&req)?;
        let r = req.get_ref().clone();
        let kit = &self.state.kit;
        kit.api.require_id("conversation_id", r.conversation_id)?;
        let key = kit.request_key(&r.request_id, &r)?;
        let responses = send::send(&self.state, &ctx, r, key).await?;
        // The reply ends when the token that asked for it expires or is revoked.
        Ok(Response::new(fusion_tenancy::end_with_token(
            &req, responses,
        )))
    }
}
