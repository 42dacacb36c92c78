//! ConvertLead: a lead becomes a contact (and, if asked, a deal for that contact) in one
//! transaction that also marks the lead converted — all of it or none of it.
//!
//! It creates what CreateContact and CreateDeal create, so it needs their permissions:
//! `crm.contacts.write` always (declared in the policy beside `crm.leads.write`), and
//! `crm.deals.write` when it is asked for a deal (checked here, before anything else).
//!
//! The lead is locked first, so two conversions of one lead cannot both pass the
//! "not yet converted" check; a repeated call with the conversion's `request_id`
//! returns the first result. The conversion is announced (`crm.lead.converted`) in
//! its transaction, so exactly once. References to other contexts (the deal's lot and
//! assignee) are asked about after that replay, before anything is locked.

use tonic::Status;

use fusion_db::resource::Read;
use fusion_db::resource::Val;
use fusion_proto::crm::v1 as pb;
use fusion_service::standard::Method;
use fusion_tenancy::TenantContext;

use crate::domain::pipeline;
use crate::error::CrmError;
use crate::grpc::API;
use crate::store::person::{set_e164, tenant_country};
use crate::store::pipeline::{ensure_pipeline, require_lead_status};
use crate::store::{REQUEST_IDS, contacts, custom_fields_pb, deals, leads, tags_of};
use crate::{AppState, DOMAIN};

const METHOD: &str = "ConvertLead";

/// What CreateDeal needs, and so a conversion that creates a deal.
const DEALS_WRITE: &str = "crm.deals.write";

/// The contact to create: what the caller gave, with empty fields copied from the lead
/// and its `lead_id` always the lead's.
fn contact_from(lead: &leads::LeadRow, given: Option<pb::Contact>) -> pb::Contact {
    let mut c = given.unwrap_or_default();
    let p = &lead.person;
    let fill = |field: &mut String, from: &Option<String>| {
        if field.trim().is_empty() {
            *field = from.clone().unwrap_or_default();
        }
    };
    fill(&mut c.first_name, &p.first_name);
    if c.last_name.trim().is_empty() {
        c.last_name = p.last_name.clone();
    }
    fill(&mut c.email, &p.email);
    fill(&mut c.phone, &p.phone);
    fill(&mut c.address, &p.address);
    fill(&mut c.suburb, &p.suburb);
    fill(&mut c.state, &p.state);
    fill(&mut c.postcode, &p.postcode);
    fill(&mut c.country, &p.country);
    fill(&mut c.notes, &p.notes);
    if c.tags.is_empty() {
        c.tags = tags_of(&p.tags);
    }
    if c.custom_fields.is_empty() {
        c.custom_fields = custom_fields_pb(&p.custom_fields);
    }
    if c.last_contact_time.is_none() {
        c.last_contact_time = p.last_contacted_at.map(fusion_service::api::ts);
    }
    c.lead_id = lead.id;
    c
}

/// Converts lead `r.id` for the caller.
pub(crate) async fn convert(
    state: &AppState,
    ctx: &TenantContext,
    r: pb::ConvertLeadRequest,
) -> Result<pb::ConvertLeadResponse, Status> {
    if r.create_deal && !ctx.has(DEALS_WRITE) {
        return Err(CrmError::PermissionDenied {
            permission: DEALS_WRITE,
        }
        .into());
    }
    API.require_id("id", r.id)?;
    let request_id = fusion_db::idempotency::request_key(DOMAIN, &r.request_id, &r)?;
    let lead_status = r.lead_status.trim().to_owned();
    if !lead_status.is_empty() {
        pipeline::key(&lead_status).map_err(|e| API.invalid("lead_status", e))?;
    }
    let asked_deal = r.create_deal.then(|| r.deal.clone().unwrap_or_default());
    ensure_pipeline(state, ctx.tenant_id).await?;

    let mut tx = state.db.begin(ctx.tenant_id).await?;
    // A retry returns the first result whatever has changed since (AIP-155).
    if let Some(saved) = REQUEST_IDS.replay(&mut tx, METHOD, request_id).await? {
        return Ok(saved);
    }
    if let Some(deal) = &asked_deal {
        deals::check_owners(state, deal, deals::CREATE).await?;
    }
    let lead: leads::LeadRow = leads::TABLE
        .fetch(&mut tx, r.id, Read::live().for_update())
        .await?;
    API.check_etag(&r.etag, lead.version)?;
    if lead.converted_at.is_some() {
        return Err(CrmError::AlreadyConverted {
            id: lead.id,
            contact_id: lead.converted_contact_id.unwrap_or_default(),
        }
        .into());
    }

    let contact = contact_from(&lead, r.contact);
    let mut values = contacts::values(&contact, contacts::CREATE)?;
    // Output only on the contact's own methods: the conversion is what sets it.
    values.push(("lead_id", Val::Int(Some(lead.id))));
    let country = tenant_country(state, &mut tx).await?;
    set_e164(&mut values, &contact.phone, &contact.country, country);
    let contact_id = contacts::TABLE.insert(&mut tx, values).await?;

    let deal_id = match asked_deal {
        None => None,
        Some(mut deal) => {
            if deal.title.trim().is_empty() {
                deal.title = format!("{} {}", contact.first_name.trim(), contact.last_name.trim())
                    .trim()
                    .to_owned();
            }
            if deal.assignee_user_id == 0 {
                deal.assignee_user_id = lead.assigned_to.unwrap_or_default();
            }
            deal.lead_id = lead.id;
            deal.contact_id = contact_id;
            let mut values = deals::values(&deal, deals::CREATE, Method::Create)?;
            deals::place_new_deal(&mut tx, &deal, &mut values).await?;
            Some(deals::TABLE.insert(&mut tx, values).await?)
        }
    };

    let mut changes = vec![
        ("converted_at", Val::Timestamp(Some(chrono::Utc::now()))),
        ("converted_contact_id", Val::Int(Some(contact_id))),
        ("converted_deal_id", Val::Int(deal_id)),
    ];
    if !lead_status.is_empty() {
        require_lead_status(&mut tx, "lead_status", &lead_status).await?;
        changes.push(("status", Val::Text(Some(lead_status))));
    }
    leads::TABLE.update(&mut tx, lead.id, changes).await?;
    let converted: leads::LeadRow = leads::TABLE.fetch(&mut tx, lead.id, Read::live()).await?;
    leads::announce_converted(&mut tx, &converted, ctx.user_id).await?;

    let response = pb::ConvertLeadResponse {
        lead: Some(converted.into_pb(state)),
        contact: Some(
            contacts::TABLE
                .fetch::<contacts::ContactRow>(&mut tx, contact_id, Read::live())
                .await?
                .into_pb(state),
        ),
        deal: match deal_id {
            Some(id) => Some(
                deals::TABLE
                    .fetch::<deals::DealRow>(&mut tx, id, Read::live())
                    .await?
                    .into_pb(state),
            ),
            None => None,
        },
    };
    REQUEST_IDS
        .remember(&mut tx, METHOD, request_id, &response)
        .await?;
    tx.commit().await?;
    Ok(response)
}
