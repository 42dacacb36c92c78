//! `fusion.crm.v1.SearchService`: one query over the tenant's live leads, contacts and
//! deals, ranked by trigram similarity so typos and partial words still find people.
//!
//! Names, emails, companies and deal titles are compared with pg_trgm (`%` for whole-
//! string similarity, `<%` for a query that is part of a longer value), both served by
//! the trigram indexes; the digits of a query are also looked for inside the E.164
//! phone numbers, with a leading trunk 0 dropped ("0412 345" finds "+61412345678").
//! Pages are keyset pages over (score, kind, id), signed like every other page token.

use tonic::{Request, Response, Status};

use fusion_db::page::PageTokenCodec;
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::search_service_server::SearchService;

use crate::grpc::{API, CrmApi, parts};
use crate::store;
use crate::store::search::Hit;

const KINDS: &[(&str, &str)] = &[
    ("lead", "crm.leads.read"),
    ("contact", "crm.contacts.read"),
    ("deal", "crm.deals.read"),
];

/// Results per page when the request says 0, and the most a page holds.
const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: i64 = 100;

impl Hit {
    fn into_pb(self) -> pb::SearchResult {
        // A field counts as matched when it scores at least the similarity threshold.
        let matched = [
            ("name", self.s_name),
            ("email", self.s_email),
            ("phone", self.s_phone),
            ("company", self.s_company),
            ("title", self.s_title),
        ]
        .into_iter()
        .filter(|(_, s)| *s >= 0.3)
        .map(|(f, _)| f.to_owned())
        .collect();
        pb::SearchResult {
            resource_type: self.kind,
            id: self.id,
            display_name: self.display_name,
            email: self.email.unwrap_or_default(),
            phone: self.phone.unwrap_or_default(),
            company: self.company.unwrap_or_default(),
            score: self.score,
            matched_fields: matched,
        }
    }
}

/// The digits of a query worth matching against phone numbers: at least 4, without a
/// leading trunk 0 (E.164 numbers carry the country code instead).
fn phone_digits(query: &str) -> String {
    let digits: String = query.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.strip_prefix('0').unwrap_or(&digits).to_owned();
    if digits.len() >= 4 {
        digits
    } else {
        String::new()
    }
}

#[tonic::async_trait]
impl SearchService for CrmApi {
    async fn search_crm(
        &self,
        req: Request<pb::SearchCrmRequest>,
    ) -> Result<Response<pb::SearchCrmResponse>, Status> {
        let (ctx, r) = parts(req)?;
        let query = r.query.trim().to_owned();
        if query.chars().count() < 2 || query.chars().count() > 200 {
            return Err(API.invalid("query", "must be 2 to 200 characters"));
        }
        let page_size = match r.page_size {
            n if n < 0 => return Err(API.invalid("page_size", "must not be negative")),
            0 => DEFAULT_PAGE,
            n => i64::from(n).min(MAX_PAGE),
        };
        let mut kinds: Vec<String> = Vec::new();
        for kind in &r.resource_types {
            if !KINDS.iter().any(|(k, _)| k == kind) {
                return Err(API.invalid("resource_types", "each must be lead, contact or deal"));
            }
        }
        // Kinds the caller may not read are left out, never an error.
        for (kind, permission) in KINDS {
            let asked = r.resource_types.is_empty() || r.resource_types.iter().any(|k| k == kind);
            if asked && ctx.has(permission) {
                kinds.push((*kind).to_owned());
            }
        }
        let mut sorted = kinds.clone();
        sorted.sort();
        let digest = PageTokenCodec::query_digest(&["search", &query, &sorted.join(",")]);
        let after = if r.page_token.is_empty() {
            None
        } else {
            let cursor = self
                .state
                .pages
                .decode(&digest, &r.page_token)
                .map_err(|_| API.invalid("page_token", "is not a token of this search"))?;
            match cursor.as_slice() {
                [Some(score), Some(kind), Some(id)] => Some((
                    score
                        .parse::<f64>()
                        .map_err(|_| API.invalid("page_token", "is malformed"))?,
                    kind.clone(),
                    id.parse::<i64>()
                        .map_err(|_| API.invalid("page_token", "is malformed"))?,
                )),
                _ => return Err(API.invalid("page_token", "is malformed")),
            }
        };
        let (after_score, after_kind, after_id) =
            after.unwrap_or((f64::INFINITY, String::new(), 0));
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let mut hits = store::search::hits(
            &mut tx,
            &store::search::Query {
                text: &query,
                phone_digits: &phone_digits(&query),
                kinds: &kinds,
                contact_details: ctx.has("crm.contacts.read"),
                after: (after_score, &after_kind, after_id),
                limit: page_size + 1,
            },
        )
        .await?;
        tx.commit().await?;
        let more = hits.len() as i64 > page_size;
        hits.truncate(usize::try_from(page_size).unwrap_or(0));
        let next_page_token = match (more, hits.last()) {
            (true, Some(last)) => self.state.pages.encode(
                &digest,
                vec![
                    Some(format!("{:?}", last.score)),
                    Some(last.kind.clone()),
                    Some(last.id.to_string()),
                ],
            ),
            _ => String::new(),
        };
        Ok(Response::new(pb::SearchCrmResponse {
            results: hits.into_iter().map(Hit::into_pb).collect(),
            next_page_token,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::phone_digits;

    #[test]
    fn phone_digits_drop_the_trunk_zero_and_need_four() {
        assert_eq!(phone_digits("0412 345"), "412345");
        assert_eq!(phone_digits("+61 412"), "61412");
        assert_eq!(phone_digits("jo 12"), "");
    }
}
