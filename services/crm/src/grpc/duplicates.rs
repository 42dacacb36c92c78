//! `fusion.crm.v1.DuplicateService`: groups of live leads or contacts that share a
//! normalised email (lower-cased, trimmed; a generated column) or an E.164 phone
//! (normalised on write with the record's or the tenant's country), found with the
//! per-tenant indexes on both. Pages are keyset pages over (reason, match key).

use tonic::{Request, Response, Status};

use fusion_db::db_status;
use fusion_db::page::{PageTokenCodec, page_size};
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::duplicate_service_server::DuplicateService;

use crate::grpc::caller;
use crate::store::API;
use crate::{AppState, DOMAIN};

#[derive(sqlx::FromRow)]
struct Group {
    reason: String,
    match_key: String,
    ids: Vec<i64>,
}

/// The DuplicateService implementation.
#[derive(Clone, Debug)]
pub(crate) struct DuplicateApi {
    state: AppState,
}

impl DuplicateApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl DuplicateService for DuplicateApi {
    async fn find_duplicates(
        &self,
        req: Request<pb::FindDuplicatesRequest>,
    ) -> Result<Response<pb::FindDuplicatesResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
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
        // `table` is one of two constants above, never input.
        let sql = format!(
            "SELECT reason, match_key, ids FROM (
                 SELECT 'email' AS reason, email_normalized AS match_key,
                        array_agg(id ORDER BY created_at, id) AS ids
                   FROM {table}
                  WHERE tenant_id = $1 AND deleted_at IS NULL AND email_normalized IS NOT NULL
                  GROUP BY email_normalized HAVING count(*) > 1
                 UNION ALL
                 SELECT 'phone', phone_e164, array_agg(id ORDER BY created_at, id)
                   FROM {table}
                  WHERE tenant_id = $1 AND deleted_at IS NULL AND phone_e164 IS NOT NULL
                  GROUP BY phone_e164 HAVING count(*) > 1
             ) AS groups
             WHERE (reason, match_key) > ($2, $3)
             ORDER BY reason, match_key
             LIMIT $4"
        );
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let mut groups: Vec<Group> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(ctx.tenant_id)
            .bind(&after_reason)
            .bind(&after_key)
            .bind(limit + 1)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| db_status(DOMAIN, e))?;
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
