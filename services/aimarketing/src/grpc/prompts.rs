//! `fusion.aimarketing.v1.PromptService`: the standard methods (on the shared kit, the
//! list reading the system prompts too), a prompt's versions, copies, and rendering as
//! the caller.

use tonic::{Request, Response, Status};

use fusion_db::list::{ListParams, ScopeValue};
use fusion_proto::aimarketing::v1 as pb;
use fusion_proto::aimarketing::v1::prompt_service_server::PromptService;
use fusion_service::api::total;
use fusion_service::replay::{self, Begun};
use fusion_service::{standard, validate};

use crate::error::AiMarketingError;
use crate::grpc::{AiMarketingApi, parts, reply};
use crate::store::prompts::{self, Prompts, VERSIONS, VISIBLE};

#[tonic::async_trait]
impl PromptService for AiMarketingApi {
    async fn create_prompt(
        &self,
        req: Request<pb::CreatePromptRequest>,
    ) -> Result<Response<pb::Prompt>, Status> {
        let (ctx, r) = parts(req)?;
        let key = self.state.kit.request_key(&r.request_id, &r)?;
        let prompt = r.prompt.unwrap_or_default();
        reply(standard::create::<Prompts>(&self.state, &ctx, key, prompt).await)
    }

    async fn get_prompt(
        &self,
        req: Request<pb::GetPromptRequest>,
    ) -> Result<Response<pb::Prompt>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::get::<Prompts>(&self.state, &ctx, r.id).await)
    }

    async fn list_prompts(
        &self,
        req: Request<pb::ListPromptsRequest>,
    ) -> Result<Response<pb::ListPromptsResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let kit = &self.state.kit;
        let page = fusion_db::list::tenant_page::<prompts::PromptRow>(
            &kit.db,
            kit.api.domain(),
            &VISIBLE,
            &params,
            &kit.pages,
            ctx.tenant_id,
            None,
        )
        .await?;
        Ok(Response::new(pb::ListPromptsResponse {
            prompts: page
                .items
                .into_iter()
                .map(|row| prompts::to_pb(kit, row))
                .collect(),
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_prompt(
        &self,
        req: Request<pb::UpdatePromptRequest>,
    ) -> Result<Response<pb::Prompt>, Status> {
        let (ctx, r) = parts(req)?;
        let prompt = r.prompt.unwrap_or_default();
        reply(standard::update::<Prompts>(&self.state, &ctx, prompt, r.update_mask).await)
    }

    async fn delete_prompt(
        &self,
        req: Request<pb::DeletePromptRequest>,
    ) -> Result<Response<pb::Prompt>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::delete::<Prompts>(&self.state, &ctx, r.id, &r.etag).await)
    }

    async fn undelete_prompt(
        &self,
        req: Request<pb::UndeletePromptRequest>,
    ) -> Result<Response<pb::Prompt>, Status> {
        let (ctx, r) = parts(req)?;
        reply(standard::undelete::<Prompts>(&self.state, &ctx, r.id).await)
    }

    async fn list_prompt_versions(
        &self,
        req: Request<pb::ListPromptVersionsRequest>,
    ) -> Result<Response<pb::ListPromptVersionsResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let kit = &self.state.kit;
        kit.api.require_id("prompt_id", r.prompt_id)?;
        let result = async {
            // The prompt must be live and visible: the tenant's own or a system prompt.
            let mut tx = kit.db.begin(ctx.tenant_id).await?;
            prompts::visible(&mut tx, r.prompt_id).await?;
            tx.commit().await?;
            let params = ListParams::new(
                r.page_size,
                r.page_token,
                String::new(),
                String::new(),
                false,
            );
            let scope = [("prompt_id", ScopeValue::Int(r.prompt_id))];
            let page = fusion_db::list::tenant_page::<prompts::VersionRow>(
                &kit.db,
                kit.api.domain(),
                &VERSIONS,
                &params,
                &kit.pages,
                ctx.tenant_id,
                Some(&scope),
            )
            .await?;
            Ok::<_, AiMarketingError>(pb::ListPromptVersionsResponse {
                prompt_versions: page.items.into_iter().map(prompts::version_pb).collect(),
                next_page_token: page.next_page_token,
                total_size: total(page.total_size),
            })
        };
        reply(result.await)
    }

    async fn copy_prompt(
        &self,
        req: Request<pb::CopyPromptRequest>,
    ) -> Result<Response<pb::Prompt>, Status> {
        let (ctx, r) = parts(req)?;
        let kit = &self.state.kit;
        let key = kit.request_key(&r.request_id, &r)?;
        kit.api.require_id("id", r.id)?;
        if !r.name.is_empty() {
            validate::name(&r.name).map_err(|e| kit.api.invalid("name", e))?;
        }
        let result = async {
            let mut tx = match replay::begin(kit, ctx.tenant_id, "CopyPrompt", key).await? {
                Begun::Replayed(copy) => return Ok(copy),
                Begun::Fresh(attempt) => attempt,
            };
            let source = prompts::visible(&mut tx, r.id).await?;
            let name = match r.name.trim() {
                "" => source.name.clone(),
                name => name.to_owned(),
            };
            let id = prompts::copy(&mut tx, &source, &name, ctx.user_id).await?;
            let copy = prompts::visible(&mut tx, id).await?;
            Ok::<_, AiMarketingError>(tx.commit(prompts::to_pb(kit, copy)).await?)
        };
        reply(result.await)
    }

    async fn render_prompt(
        &self,
        req: Request<pb::RenderPromptRequest>,
    ) -> Result<Response<pb::RenderPromptResponse>, Status> {
        let (ctx, r) = parts(req)?;
        reply(crate::render::render(&self.state, &ctx, r).await)
    }
}
