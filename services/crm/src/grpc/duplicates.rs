//! `fusion.crm.v1.DuplicateService`: groups of live leads or contacts that share a
//! normalised email (lower-cased, trimmed; a generated column) or an E.164 phone
//! (normalised on write with the record's or the tenant's country), found with the
//! per-tenant indexes on both. Pages are keyset pages over (reason, match key).

use tonic::{Request, Response, Status};

use fusion_db::page::{PageTokenCodec, page_size};
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::duplicate_service_server::DuplicateService;

use crate::grpc::{API, CrmApi, parts};
use crate::store;

#[tonic::async_trait]
impl DuplicateService for CrmApi {
    async fn find_duplicates(
        &self,
        req: Request<pb::FindDuplicatesRequest>,
    ) -> Result<Response<pb::FindDuplicatesResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let (table, permission) = match r.resource_type.trim() {
            "lead" => ("crm.leads", "crm.leads.read"),
            "contact" => ("crm.contacts", "crm.contacts.read"),
            _ => return Err(API.invalid("resource_type", "must be lead or contact")),
        };
        ctx.require(permission)?;
        let limit = page_size(r.page_size).map_err(|e| API.invalid("page_size", e))?;
        let digest = PageTokenCodec::query_digest(&["duplicates", table]);
        let (after_reason, after_key) = if r.page_token.is_empty() {
            (String::new(), String::new())
        } else {
            match self
                .state
                .pages
                .decode(&digest, &r.page_token)
                .map_err(|_| API.invalid("page_token", "is not a token of this listing"))?
                .as_slice()
            {
                [Some(reason), Some(key)] => (reason.clone(), key.clone()),
                _ => return Err(API.invalid("page_token", "is malformed")),
            }
        };
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let mut groups =
            store::duplicates::groups(&mut tx, table, (&after_reason, &after_key), limit + 1)
                .await?;
        tx.commit().await?;
        let more = groups.len() as i64 > limit;
        groups.truncate(usize::try_from(limit).unwrap_or(0));
        let next_page_token = match (more, groups.last()) {
            (true, Some(last)) => self.state.pages.encode(
                &digest,
                vec![Some(last.reason.clone()), Some(last.match_key.clone())],
            ),
            _ => String::new(),
        };
        let kind = r.resource_type.trim().to_owned();
        Ok(Response::new(pb::FindDuplicatesResponse {
            duplicate_groups: groups
                .into_iter()
                .map(|g| pb::DuplicateGroup {
                    resource_type: kind.clone(),
                    reason: g.reason,
                    match_key: g.match_key,
                    ids: g.ids,
                })
                .collect(),
            next_page_token,
        }))
    }
}
