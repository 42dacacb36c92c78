//! RenderPrompt: a prompt's template filled with the records a request leads to, each
//! read from its owner as the caller.
//!
//! A request names a lead, a deal and a lot (any of them); a deal leads to its lead,
//! contact and lot unless the request names others, a lead to the contact it was
//! converted into, a lot to its project; the `user` variables are the caller's own.
//! Only what the template uses is read (beyond the records the request names, which
//! are always checked). A record the caller may not read (the owner's
//! PERMISSION_DENIED) fills nothing, so its variables come back unfilled: the owner's
//! permission rules hold through the template. A record the request names that does
//! not exist for the caller is INVALID_ARGUMENT naming its field; one reached through
//! another record fills nothing.

use std::collections::{HashMap, HashSet};

use fusion_proto::aimarketing::v1 as pb;
use fusion_proto::crm::v1 as crm;
use fusion_proto::errors::FieldViolation;
use fusion_proto::identity::v1 as identity;
use fusion_proto::property::v1 as property;
use fusion_tenancy::TenantContext;

use crate::AppState;
use crate::domain::template;
use crate::error::AiMarketingError;
use crate::refs::Seen;
use crate::store::prompts;

/// The most variables a request passes.
const MAX_VARIABLES: usize = 100;

/// The longest value a request passes.
const MAX_VALUE: usize = 10_000;

/// Renders prompt `r.id` for the caller.
pub(crate) async fn render(
    state: &AppState,
    caller: &TenantContext,
    r: pb::RenderPromptRequest,
) -> Result<pb::RenderPromptResponse, AiMarketingError> {
    let given = check(&r)?;
    let prompt = {
        let mut tx = state.db.begin(caller.tenant_id).await?;
        let prompt = prompts::visible(&mut tx, r.id).await?;
        tx.commit().await?;
        prompt
    };
    let template = template::parse(&prompt.content)
        .map_err(|_| AiMarketingError::Internal("a stored prompt is not a valid template"))?;
    let used = template.variables();
    let needs = |record: &str| {
        let prefix = format!("{record}.");
        used.iter()
            .any(|v| v.starts_with(&prefix) && !given.contains_key(*v))
    };

    let refs = &state.refs;
    let deal = match r.deal_id {
        0 => None,
        id => explicit(refs.deal("deal_id", id).await?, "deal_id", "deal", id)?,
    };
    let lead = match (r.lead_id, deal.as_ref().map_or(0, |d| d.lead_id)) {
        (0, 0) => None,
        (0, via_deal) if needs("lead") => refs.lead("deal_id", via_deal).await?.visible(),
        (0, _) => None,
        (id, _) => explicit(refs.lead("lead_id", id).await?, "lead_id", "lead", id)?,
    };
    let lot = match (r.lot_id, deal.as_ref().map_or(0, |d| d.lot_id)) {
        (0, 0) => None,
        (0, via_deal) if needs("lot") || needs("project") => {
            refs.lot("deal_id", via_deal).await?.visible()
        }
        (0, _) => None,
        (id, _) => explicit(refs.lot("lot_id", id).await?, "lot_id", "lot", id)?,
    };
    let contact_id = deal
        .as_ref()
        .map(|d| d.contact_id)
        .filter(|id| *id > 0)
        .or_else(|| lead.as_ref().map(|l| l.converted_contact_id))
        .unwrap_or(0);
    let contact = if contact_id > 0 && needs("contact") {
        refs.contact("contact", contact_id).await?.visible()
    } else {
        None
    };
    let project = match &lot {
        Some(lot) if needs("project") => refs.project("lot_id", lot.project_id).await?.visible(),
        _ => None,
    };
    let user = if needs("user") {
        refs.user("user", caller.user_id).await?.visible()
    } else {
        None
    };

    let mut values = Values::default();
    if let Some(l) = &lead {
        values.lead(l);
    }
    if let Some(c) = &contact {
        values.contact(c);
    }
    if let Some(d) = &deal {
        values.deal(d);
    }
    if let Some(l) = &lot {
        values.lot(l);
    }
    if let Some(p) = &project {
        values.project(p);
    }
    if let Some(u) = &user {
        values.user(u);
    }
    let rendered = template.render(|name| {
        given
            .get(name)
            .copied()
            .or_else(|| values.0.get(name).map(String::as_str))
    });
    Ok(pb::RenderPromptResponse {
        text: rendered.text,
        unfilled_variables: rendered.unfilled,
        content_version: prompt.content_version,
    })
}

/// A record the request names: missing is the request's mistake; refused fills
/// nothing.
fn explicit<T>(
    seen: Seen<T>,
    field: &str,
    what: &str,
    id: i64,
) -> Result<Option<T>, AiMarketingError> {
    match seen {
        Seen::Refused(_) => Ok(None),
        seen => seen.required(field, what, id).map(Some),
    }
}

/// The request's ids and variables, checked; the variables by name.
fn check(r: &pb::RenderPromptRequest) -> Result<HashMap<&str, &str>, AiMarketingError> {
    let mut violations = Vec::new();
    for (field, id) in [
        ("id", r.id),
        ("lead_id", r.lead_id),
        ("deal_id", r.deal_id),
        ("lot_id", r.lot_id),
    ] {
        let ok = if field == "id" { id > 0 } else { id >= 0 };
        if !ok {
            violations.push(FieldViolation::new(field, "must be a positive id"));
        }
    }
    if r.variables.len() > MAX_VARIABLES {
        violations.push(FieldViolation::new(
            "variables",
            format!("at most {MAX_VARIABLES} variables"),
        ));
    }
    let mut seen = HashSet::new();
    let mut given = HashMap::new();
    for (i, v) in r.variables.iter().enumerate() {
        let name = v.name.trim();
        if !template::is_known(name) {
            violations.push(FieldViolation::new(
                format!("variables[{i}].name"),
                format!("{name:?} is not a template variable"),
            ));
        } else if !seen.insert(name) {
            violations.push(FieldViolation::new(
                format!("variables[{i}].name"),
                format!("{name} is given twice"),
            ));
        }
        if let Err(e) = fusion_service::validate::max_len(&v.value, MAX_VALUE) {
            violations.push(FieldViolation::new(format!("variables[{i}].value"), e));
        }
        given.insert(name, v.value.as_str());
    }
    AiMarketingError::check(violations)?;
    Ok(given)
}

/// The values records provide, by variable name; empty fields provide none.
#[derive(Default)]
struct Values(HashMap<&'static str, String>);

impl Values {
    fn put(&mut self, name: &'static str, value: impl Into<String>) {
        let value = value.into();
        if !value.trim().is_empty() {
            self.0.insert(name, value);
        }
    }

    fn lead(&mut self, l: &crm::Lead) {
        self.put("lead.first_name", &l.first_name);
        self.put("lead.last_name", &l.last_name);
        self.put("lead.full_name", full_name(&l.first_name, &l.last_name));
        self.put("lead.email", &l.email);
        self.put("lead.phone", &l.phone);
        self.put("lead.suburb", &l.suburb);
        self.put("lead.state", &l.state);
        self.put("lead.postcode", &l.postcode);
        self.put("lead.source", &l.source);
        self.put("lead.status", &l.status);
        self.put("lead.stage", &l.stage);
    }

    fn contact(&mut self, c: &crm::Contact) {
        self.put("contact.first_name", &c.first_name);
        self.put("contact.last_name", &c.last_name);
        self.put("contact.full_name", full_name(&c.first_name, &c.last_name));
        self.put("contact.email", &c.email);
        self.put("contact.phone", &c.phone);
        self.put("contact.company", &c.company);
    }

    fn deal(&mut self, d: &crm::Deal) {
        self.put("deal.title", &d.title);
        self.put("deal.value", &d.value);
        self.put("deal.currency_code", &d.currency_code);
        self.put("deal.stage", &d.stage);
        self.put("deal.status", &d.status);
    }

    fn lot(&mut self, l: &property::Lot) {
        self.put("lot.lot_number", &l.lot_number);
        self.put(
            "lot.address",
            format!("{} {}", l.street_number.trim(), l.street_name.trim()).trim(),
        );
        self.put("lot.price", &l.price);
        self.put("lot.currency_code", &l.currency_code);
        if let Some(bedrooms) = l.bedrooms {
            self.put("lot.bedrooms", bedrooms.to_string());
        }
        self.put("lot.bathrooms", &l.bathrooms);
        if let Some(garage) = l.garage {
            self.put("lot.garage", garage.to_string());
        }
        self.put("lot.land_size", &l.land_size);
        self.put("lot.status", &l.status);
        self.put("lot.features", l.features.join(", "));
    }

    fn project(&mut self, p: &property::Project) {
        self.put("project.name", &p.name);
        self.put("project.suburb", &p.suburb);
        self.put("project.state", &p.state);
        self.put("project.address", &p.address);
    }

    fn user(&mut self, u: &identity::User) {
        self.put("user.name", &u.name);
        self.put("user.email", &u.email);
        self.put("user.phone", &u.phone);
    }
}

fn full_name(first: &str, last: &str) -> String {
    format!("{} {}", first.trim(), last.trim())
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_a_record_fills_is_in_the_catalogue() {
        let mut values = Values::default();
        values.lead(&crm::Lead {
            first_name: "a".into(),
            last_name: "a".into(),
            email: "a".into(),
            phone: "a".into(),
            suburb: "a".into(),
            state: "a".into(),
            postcode: "a".into(),
            source: "a".into(),
            status: "a".into(),
            stage: "a".into(),
            ..Default::default()
        });
        values.contact(&crm::Contact {
            first_name: "a".into(),
            last_name: "a".into(),
            email: "a".into(),
            phone: "a".into(),
            company: "a".into(),
            ..Default::default()
        });
        values.deal(&crm::Deal {
            title: "a".into(),
            value: "a".into(),
            currency_code: "a".into(),
            stage: "a".into(),
            status: "a".into(),
            ..Default::default()
        });
        values.lot(&property::Lot {
            lot_number: "a".into(),
            street_number: "a".into(),
            price: "a".into(),
            currency_code: "a".into(),
            bedrooms: Some(1),
            bathrooms: "a".into(),
            garage: Some(1),
            land_size: "a".into(),
            status: "a".into(),
            features: vec!["a".into()],
            ..Default::default()
        });
        values.project(&property::Project {
            name: "a".into(),
            suburb: "a".into(),
            state: "a".into(),
            address: "a".into(),
            ..Default::default()
        });
        values.user(&identity::User {
            name: "a".into(),
            email: "a".into(),
            phone: "a".into(),
            ..Default::default()
        });
        let mut filled: Vec<&str> = values.0.keys().copied().collect();
        filled.sort_unstable();
        let mut catalogue = template::VARIABLES.to_vec();
        catalogue.sort_unstable();
        assert_eq!(filled, catalogue);
    }

    #[test]
    fn passed_variables_must_be_template_variables_given_once() {
        let request = |names: &[&str]| pb::RenderPromptRequest {
            id: 1,
            variables: names
                .iter()
                .map(|n| pb::PromptVariable {
                    name: (*n).into(),
                    value: "v".into(),
                })
                .collect(),
            ..Default::default()
        };
        assert!(check(&request(&["input.offer", "lead.first_name"])).is_ok());
        let Err(AiMarketingError::Invalid(v)) =
            check(&request(&["input.offer", "input.offer", "nope"]))
        else {
            panic!("refused");
        };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["variables[1].name", "variables[2].name"]);
    }
}
