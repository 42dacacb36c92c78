//! MatchLotsForLead: the caller's tenant's available lots ranked for a lead, each read
//! from its owner as the caller (the client twin of the tenancy layer forwards the
//! caller's token, see [`crate::refs`]).
//!
//! The lead comes from crm (its custom fields say what it wants, see
//! [`crate::domain::matching`]); the lots from property's ListLots, every available
//! lot (of one project, if asked) a page at a time, keeping only the best so far, so
//! a tenant's whole stock is ranked in bounded memory. Where a lot is comes from its
//! project, read once per project and only when the lead names places; a project the
//! caller may not read places nothing. A lead the caller cannot see is the request's
//! mistake in `lead_id`.

use std::collections::HashMap;

use futures::StreamExt as _;
use rust_decimal::Decimal;

use fusion_proto::aimarketing::v1 as pb;
use fusion_proto::errors::FieldViolation;
use fusion_proto::property::v1 as property;

use crate::AppState;
use crate::domain::matching::{self, Criteria, Field, Fit, Lot, Place};
use crate::error::AiMarketingError;
use crate::store::places;

/// Matches returned when the request names no number.
const DEFAULT_RESULTS: usize = 10;

/// The most matches returned.
const MAX_RESULTS: usize = 50;

/// Lots read from property per page.
const PAGE: i32 = 500;

/// Projects read from property at once.
const CONCURRENT_READS: usize = 8;

/// What ListLots is asked for: lots that can be sold now.
const AVAILABLE: &str = "status = \"available\"";

/// Ranks the available lots of the caller's tenant for lead `r.lead_id`.
pub(crate) async fn match_lots(
    state: &AppState,
    r: pb::MatchLotsForLeadRequest,
) -> Result<pb::MatchLotsForLeadResponse, AiMarketingError> {
    let wanted = check(&r)?;
    let refs = &state.refs;
    let lead = refs
        .lead("lead_id", r.lead_id)
        .await?
        .required("lead_id", "lead", r.lead_id)?;
    let fields: Vec<Field<'_>> = lead
        .custom_fields
        .iter()
        .map(|f| Field {
            name: &f.name,
            value: &f.value,
            values: &f.values,
        })
        .collect();
    let criteria = Criteria::from_fields(&fields);
    if criteria.is_empty() {
        return Err(AiMarketingError::LeadHasNoCriteria { lead_id: lead.id });
    }

    // The best `wanted` lots so far, and a page's worth beside them.
    let mut best: Vec<(Fit, Lot, property::Lot)> = Vec::new();
    let mut places_of: HashMap<i64, Option<Place>> = HashMap::new();
    let mut considered = 0_usize;
    let mut token = String::new();
    loop {
        let page = refs
            .lot_page("project_id", AVAILABLE, r.project_id, PAGE, token)
            .await?;
        if !criteria.locations.is_empty() {
            learn_places(state, &page.lots, &mut places_of).await?;
        }
        considered += page.lots.len();
        for lot in page.lots {
            let facts = facts_of(&lot, &places_of);
            best.push((matching::score(&criteria, &facts), facts, lot));
        }
        best.sort_by(|a, b| matching::rank((&a.0, &a.1), (&b.0, &b.1)));
        best.truncate(wanted);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }

    Ok(pb::MatchLotsForLeadResponse {
        criteria: Some(criteria_pb(&criteria)),
        matches: best
            .into_iter()
            .map(|(fit, _, lot)| pb::LotMatch {
                lot_id: lot.id,
                project_id: lot.project_id,
                lot_number: lot.lot_number,
                price: lot.price,
                score: fit.score,
                reasons: fit
                    .reasons
                    .into_iter()
                    .map(|r| pb::MatchReason {
                        criterion: r.criterion.to_owned(),
                        points: r.points,
                        max_points: r.max_points,
                        detail: r.detail,
                    })
                    .collect(),
            })
            .collect(),
        considered_lot_count: i32::try_from(considered).unwrap_or(i32::MAX),
    })
}

/// The request's ids checked; the number of matches wanted.
fn check(r: &pb::MatchLotsForLeadRequest) -> Result<usize, AiMarketingError> {
    let mut violations = Vec::new();
    if r.lead_id <= 0 {
        violations.push(FieldViolation::new("lead_id", "must be a positive id"));
    }
    if r.project_id < 0 {
        violations.push(FieldViolation::new(
            "project_id",
            "must be a positive id, or 0 for every project",
        ));
    }
    let wanted = match usize::try_from(r.max_results) {
        Ok(0) => DEFAULT_RESULTS,
        Ok(n) => n.min(MAX_RESULTS),
        Err(_) => {
            violations.push(FieldViolation::new(
                "max_results",
                "cannot be negative (0 means 10)",
            ));
            0
        }
    };
    AiMarketingError::check(violations)?;
    Ok(wanted)
}

/// Reads the projects of `lots` not yet known into `known`, as the caller: a project
/// the caller may not see, or may not read, places nothing.
async fn learn_places(
    state: &AppState,
    lots: &[property::Lot],
    known: &mut HashMap<i64, Option<Place>>,
) -> Result<(), AiMarketingError> {
    let mut unknown: Vec<i64> = lots
        .iter()
        .map(|l| l.project_id)
        .filter(|id| *id > 0 && !known.contains_key(id))
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    let refs = &state.refs;
    let mut reads = futures::stream::iter(unknown)
        .map(|id| async move { (id, refs.project("project_id", id).await) })
        .buffer_unordered(CONCURRENT_READS);
    while let Some((id, seen)) = reads.next().await {
        let place = seen?.visible().map(|p| Place {
            project: p.name,
            suburb: p.suburb,
            state: p.state,
        });
        known.insert(id, place);
    }
    Ok(())
}

/// What matching reads of a lot.
fn facts_of(lot: &property::Lot, places: &HashMap<i64, Option<Place>>) -> Lot {
    Lot {
        id: lot.id,
        price: lot.price.trim().parse::<Decimal>().ok(),
        bedrooms: lot.bedrooms,
        features: lot.features.clone(),
        place: places.get(&lot.project_id).cloned().flatten(),
    }
}

/// What the lead wants, on the wire.
fn criteria_pb(c: &Criteria) -> pb::LeadCriteria {
    let amount = |d: Option<Decimal>| d.map(|d| places(d, 2)).unwrap_or_default();
    pb::LeadCriteria {
        min_price: amount(c.budget.as_ref().and_then(|b| b.min)),
        max_price: amount(c.budget.as_ref().and_then(|b| b.max)),
        min_bedrooms: c.min_bedrooms.unwrap_or_default(),
        locations: c.locations.clone(),
        features: c.features.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_number_of_matches_defaults_to_10_and_stops_at_50() {
        let request = |lead_id, project_id, max_results| pb::MatchLotsForLeadRequest {
            lead_id,
            project_id,
            max_results,
        };
        assert_eq!(check(&request(1, 0, 0)).unwrap(), 10);
        assert_eq!(check(&request(1, 3, 7)).unwrap(), 7);
        assert_eq!(check(&request(1, 0, 500)).unwrap(), 50);
        let Err(AiMarketingError::Invalid(v)) = check(&request(0, -1, -1)) else {
            panic!("refused");
        };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["lead_id", "project_id", "max_results"]);
    }
}
