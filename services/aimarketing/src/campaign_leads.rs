//! AddCampaignLeads: crm leads added to a campaign a page at a time, streamed.
//!
//! Leads come from crm, read as the caller: by id (each one read, all of them checked
//! before any is added), or by a filter crm evaluates, paged through ListLeads
//! however many it matches. The request and the first page are checked before the
//! stream starts, so a malformed filter or a closed campaign is the call's error.
//! Then each page is added in a transaction of its own (the campaign share-locked and
//! checked open, the metrics recomputed) and reported; the next page is read only once
//! the client has taken the report, so a slow client slows the reading of crm and a
//! client that goes away stops it. Adding is a set union, so a page added twice, or a
//! call retried after a failure, adds each lead once.

use std::pin::Pin;

use futures::{Stream, StreamExt as _};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use fusion_db::idempotency::RequestKey;
use fusion_db::resource::Read;
use fusion_proto::aimarketing::v1 as pb;
use fusion_proto::errors::FieldViolation;
use fusion_tenancy::TenantContext;

use crate::AppState;
use crate::error::AiMarketingError;
use crate::store::campaign_leads::{self, MAX_IDS};
use crate::store::campaigns::{self, open_for_leads};

/// The AddCampaignLeads stream.
pub(crate) type AddStream =
    Pin<Box<dyn Stream<Item = Result<pb::AddCampaignLeadsResponse, Status>> + Send>>;

/// The method, as request ids are saved under it.
const METHOD: &str = "AddCampaignLeads";

/// Leads read from crm per page.
const PAGE: i32 = 500;

/// Leads read from crm at once when checking ids.
const CONCURRENT_READS: usize = 8;

/// Where the leads to add come from.
enum Source {
    /// The ids named, checked: one page.
    Ids(Vec<i64>),
    /// A filter crm evaluates: its first page, read, and the filter for the next.
    Filter {
        filter: String,
        first: fusion_proto::crm::v1::ListLeadsResponse,
    },
}

/// Checks the request, replays a finished call with its request id, reads the first
/// page, and streams the rest.
pub(crate) async fn add(
    state: &AppState,
    caller: &TenantContext,
    r: &pb::AddCampaignLeadsRequest,
) -> Result<AddStream, AiMarketingError> {
    let kit = &state.kit;
    let key = fusion_db::idempotency::request_key(crate::DOMAIN, &r.request_id, r)?;
    check(r)?;
    let mut tx = kit.db.begin(caller.tenant_id).await?;
    if let Some(last) = kit
        .request_ids
        .replay::<pb::AddCampaignLeadsResponse>(&mut tx, METHOD, key)
        .await?
    {
        return Ok(Box::pin(tokio_stream::once(Ok(last))));
    }
    open_for_leads(&mut tx, r.campaign_id).await?;
    tx.rollback().await?;

    let source = if r.lead_ids.is_empty() {
        let first = state
            .refs
            .lead_page("filter", &r.filter, PAGE, String::new())
            .await?;
        Source::Filter {
            filter: r.filter.clone(),
            first,
        }
    } else {
        Source::Ids(checked_ids(state, &r.lead_ids).await?)
    };

    let (sender, receiver) = mpsc::channel(1);
    let run = Run {
        state: state.clone(),
        tenant_id: caller.tenant_id,
        user_id: caller.user_id,
        campaign_id: r.campaign_id,
        key,
        sender,
    };
    // The forwarding of the caller's token to crm reads the caller from the task.
    tokio::spawn(caller.clone().scope(run.pages(source)));
    Ok(Box::pin(ReceiverStream::new(receiver)))
}

/// One of `lead_ids` and `filter`; ids positive and at most [`MAX_IDS`].
fn check(r: &pb::AddCampaignLeadsRequest) -> Result<(), AiMarketingError> {
    let mut violations = Vec::new();
    if r.campaign_id <= 0 {
        violations.push(FieldViolation::new("campaign_id", "must be a positive id"));
    }
    match (r.lead_ids.is_empty(), r.filter.trim().is_empty()) {
        (true, true) => violations.push(FieldViolation::new(
            "lead_ids",
            "name the leads to add, or a filter that finds them",
        )),
        (false, false) => violations.push(FieldViolation::new(
            "filter",
            "send either lead_ids or a filter, not both",
        )),
        _ => {}
    }
    if r.lead_ids.len() > MAX_IDS {
        violations.push(FieldViolation::new(
            "lead_ids",
            format!("at most {MAX_IDS} leads; add more with a filter"),
        ));
    }
    for (i, id) in r.lead_ids.iter().enumerate() {
        if *id <= 0 {
            violations.push(FieldViolation::new(
                format!("lead_ids[{i}]"),
                "must be a positive id",
            ));
        }
    }
    AiMarketingError::check(violations)
}

/// The distinct ids of `lead_ids`, each a live lead crm shows the caller.
async fn checked_ids(state: &AppState, lead_ids: &[i64]) -> Result<Vec<i64>, AiMarketingError> {
    let mut distinct = Vec::with_capacity(lead_ids.len());
    for id in lead_ids {
        if !distinct.contains(id) {
            distinct.push(*id);
        }
    }
    // Owned inputs for each read, so the reads' futures borrow nothing of this call.
    let refs = state.refs.clone();
    let reads: Vec<Result<(), AiMarketingError>> =
        futures::stream::iter(lead_ids.iter().copied().enumerate())
            .map(move |(i, id)| {
                let refs = refs.clone();
                async move {
                    let field = format!("lead_ids[{i}]");
                    refs.lead(&field, id)
                        .await?
                        .required(&field, "lead", id)
                        .map(|_| ())
                }
            })
            .buffered(CONCURRENT_READS)
            .collect()
            .await;
    let mut violations = Vec::new();
    for read in reads {
        match read {
            Ok(()) => {}
            Err(AiMarketingError::Invalid(mut v)) => violations.append(&mut v),
            Err(e) => return Err(e),
        }
    }
    AiMarketingError::check(violations)?;
    Ok(distinct)
}

/// The running call: adds pages and reports each.
struct Run {
    state: AppState,
    tenant_id: i64,
    user_id: i64,
    campaign_id: i64,
    key: Option<RequestKey>,
    sender: mpsc::Sender<Result<pb::AddCampaignLeadsResponse, Status>>,
}

/// Progress so far.
#[derive(Default)]
struct Progress {
    sequence_number: i64,
    matched: i64,
    added: i64,
}

impl Run {
    /// Adds every page of `source`, reporting each; stops at the first error (sent as
    /// the stream's end) or when the client goes away.
    async fn pages(self, source: Source) {
        let mut progress = Progress::default();
        let outcome = match source {
            Source::Ids(ids) => self.page(&mut progress, &ids, true).await.map(|_| ()),
            Source::Filter { filter, first } => self.filtered(&mut progress, &filter, first).await,
        };
        if let Err(e) = outcome {
            // The client may be gone already; then there is no one to tell.
            let _ = self.sender.send(Err(e.into())).await;
        }
    }

    async fn filtered(
        &self,
        progress: &mut Progress,
        filter: &str,
        mut page: fusion_proto::crm::v1::ListLeadsResponse,
    ) -> Result<(), AiMarketingError> {
        loop {
            let ids: Vec<i64> = page.leads.iter().map(|l| l.id).collect();
            let last = page.next_page_token.is_empty();
            if !self.page(progress, &ids, last).await? || last {
                return Ok(());
            }
            page = self
                .state
                .refs
                .lead_page("filter", filter, PAGE, page.next_page_token)
                .await?;
        }
    }

    /// Adds one page and reports it; the last report carries the campaign and is
    /// saved under the request id. Whether the client is still there.
    async fn page(
        &self,
        progress: &mut Progress,
        ids: &[i64],
        last: bool,
    ) -> Result<bool, AiMarketingError> {
        let kit = &self.state.kit;
        let mut tx = kit.db.begin(self.tenant_id).await?;
        let campaign = open_for_leads(&mut tx, self.campaign_id).await?;
        progress.added += campaign_leads::add(&mut tx, &campaign, ids, self.user_id).await?;
        progress.matched += i64::try_from(ids.len()).unwrap_or(i64::MAX);
        progress.sequence_number += 1;
        let mut response = pb::AddCampaignLeadsResponse {
            sequence_number: progress.sequence_number,
            matched_lead_count: progress.matched,
            added_lead_count: progress.added,
            campaign: None,
        };
        if last {
            let row = campaigns::TABLE
                .fetch(&mut tx, self.campaign_id, Read::live())
                .await?;
            response.campaign = Some(campaigns::to_pb(kit, row));
            // A concurrent call with the same request id may have finished first; its
            // answer stands.
            let earlier = kit
                .request_ids
                .replay::<pb::AddCampaignLeadsResponse>(&mut tx, METHOD, self.key)
                .await?;
            if earlier.is_none() {
                kit.request_ids
                    .remember(&mut tx, METHOD, self.key, &response)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(self.sender.send(Ok(response)).await.is_ok())
    }
}
