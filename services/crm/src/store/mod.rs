//! crm's store: every SQL statement of the context, one module per aggregate, and the
//! pieces its resources share (request ids, wire forms of tags and custom fields, the
//! record a task or note is about). `grpc` calls down into it; it never calls up.

pub(crate) mod contacts;
pub(crate) mod deals;
pub(crate) mod duplicates;
pub(crate) mod leads;
pub(crate) mod merge;
pub(crate) mod notes;
pub(crate) mod person;
pub(crate) mod pipeline;
pub(crate) mod search;
pub(crate) mod settings;
pub(crate) mod tasks;

use sqlx::PgConnection;

use fusion_db::idempotency;
use fusion_db::resource::{self, Val, Values};
use fusion_proto::crm::v1 as pb;

use crate::domain::fields::{self, CustomField};
use crate::error::CrmError;
use crate::{AppState, DOMAIN};

const IDEMPOTENCY_TABLE: &str = "crm.idempotency_keys";

/// This context's request ids (AIP-155): `REQUEST_IDS.replay(&mut tx, method, id)`
/// before a write, `REQUEST_IDS.remember(...)` in the same transaction after it.
pub(crate) const REQUEST_IDS: idempotency::RequestIds =
    idempotency::RequestIds::new(DOMAIN, IDEMPOTENCY_TABLE);

/// Converts the fields named in `fields` into column values (see
/// [`resource::values_of`]).
pub(crate) fn values_of(
    prefix: &str,
    fields: &[&str],
    convert: impl FnMut(&str) -> Result<Option<(&'static str, Val)>, String>,
) -> Result<Values, CrmError> {
    resource::values_of(DOMAIN, prefix, fields, convert).map_err(|e| match e.kind() {
        fusion_db::Kind::Invalid(violations) => CrmError::Invalid(violations.clone()),
        _ => e.into(),
    })
}

/// Like [`values_of`] for a record with custom fields: `custom_fields` (when named in
/// `fields`) is checked as a whole, with a violation per offending part.
pub(crate) fn record_values(
    prefix: &str,
    fields: &[&str],
    custom: &[pb::CustomField],
    mut convert: impl FnMut(&str) -> Result<Option<(&'static str, Val)>, String>,
) -> Result<Values, CrmError> {
    let mut values = Vec::new();
    let mut violations = Vec::new();
    for field in fields {
        if *field == "custom_fields" {
            match custom_fields_val(prefix, custom) {
                Ok(v) => values.push(("custom_fields", v)),
                Err(mut found) => violations.append(&mut found),
            }
            continue;
        }
        match convert(field) {
            Ok(Some(value)) => values.push(value),
            Ok(None) => {}
            Err(why) => violations.push(fusion_proto::errors::FieldViolation::new(
                format!("{prefix}.{field}"),
                why,
            )),
        }
    }
    CrmError::check(violations)?;
    Ok(values)
}

/// A "last contacted" time from the wire: unset clears it; never in the future.
pub(crate) fn contact_time(t: &Option<prost_types::Timestamp>) -> Result<Val, String> {
    let Some(t) = t else {
        return Ok(Val::Timestamp(None));
    };
    let at = fusion_service::api::parse_ts(t)?;
    if at > chrono::Utc::now() + chrono::Duration::minutes(5) {
        return Err("cannot be in the future".into());
    }
    Ok(Val::Timestamp(Some(at)))
}

/// Tags from the wire, checked, as a JSON column value.
pub(crate) fn tags_val(tags: &[String]) -> Result<Val, String> {
    fields::tags(tags).map(|t| Val::Json(serde_json::json!(t)))
}

/// Tags as stored.
pub(crate) fn tags_of(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Custom fields from the wire, checked, as the stored document; violations are named
/// `<prefix>.custom_fields[<i>].<part>`.
pub(crate) fn custom_fields_val(
    prefix: &str,
    list: &[pb::CustomField],
) -> Result<Val, Vec<fusion_proto::errors::FieldViolation>> {
    let domain: Vec<CustomField> = list
        .iter()
        .map(|f| CustomField {
            name: f.name.clone(),
            label: f.label.clone(),
            kind: f.r#type.clone(),
            options: f.options.clone(),
            value: f.value.clone(),
            values: f.values.clone(),
        })
        .collect();
    fields::custom_fields(&domain)
        .map(Val::Json)
        .map_err(|problems| {
            problems
                .into_iter()
                .map(|(part, why)| {
                    let field = match part.split_once('.') {
                        Some((i, part)) => format!("{prefix}.custom_fields[{i}].{part}"),
                        None => format!("{prefix}.custom_fields"),
                    };
                    fusion_proto::errors::FieldViolation::new(field, why)
                })
                .collect()
        })
}

/// Custom fields as stored, on the wire.
pub(crate) fn custom_fields_pb(doc: &serde_json::Value) -> Vec<pb::CustomField> {
    fields::custom_fields_of(doc)
        .into_iter()
        .map(|f| pb::CustomField {
            name: f.name,
            label: f.label,
            r#type: f.kind,
            options: f.options,
            value: f.value,
            values: f.values,
        })
        .collect()
}

/// The CRM tables behind the kinds of record a task or note may be about that this
/// context owns, with the permission that reads them; the other kinds in
/// [`crate::refs::SUBJECTS`] are property's.
const CRM_SUBJECTS: &[(&str, &str, &str)] = &[
    ("lead", "crm.leads", "crm.leads.read"),
    ("contact", "crm.contacts", "crm.contacts.read"),
    ("deal", "crm.deals", "crm.deals.read"),
];

/// INVALID_ARGUMENT unless `kind` `id`, the record a task or note is about (fields
/// `<field_prefix>_type` and `<field_prefix>_id`), is live in the caller's tenant.
///
/// The caller must be able to read the record (PERMISSION_DENIED naming the permission
/// otherwise): a task or note on a record nobody let them see would tell them it
/// exists. A lead, contact or deal is key-share locked in `conn`, the caller's
/// transaction, so it cannot be deleted before the write commits. A project, stage or lot is asked of
/// property as the caller, from inside the transaction: callers check the subject
/// before they write or lock anything, so the call holds only a pooled connection; it
/// keeps the request-id replay ahead of the check (a retry returns its first result
/// even if the record has gone since) and the kind → owner rule in this one place; and a
/// record of another context cannot be locked from here either way.
pub(crate) async fn require_subject(
    state: &AppState,
    caller: &fusion_tenancy::TenantContext,
    conn: &mut PgConnection,
    field_prefix: &str,
    kind: &str,
    id: i64,
) -> Result<(), CrmError> {
    let id_field = format!("{field_prefix}_id");
    if !crate::refs::SUBJECTS.contains(&kind) {
        return Err(CrmError::invalid(
            &format!("{field_prefix}_type"),
            format!("must be one of: {}", crate::refs::SUBJECTS.join(", ")),
        ));
    }
    fusion_db::resource::require_id(DOMAIN, &id_field, id)?;
    let crm_subject = CRM_SUBJECTS.iter().find(|(k, _, _)| *k == kind);
    if let Some((_, _, read)) = crm_subject
        && !caller.has(read)
    {
        return Err(CrmError::PermissionDenied { permission: read });
    }
    match crm_subject {
        Some((_, table, _)) if resource::lock_live(conn, DOMAIN, table, id).await? => Ok(()),
        Some(_) => Err(CrmError::invalid(
            &id_field,
            format!("no {kind} {id} in this tenant"),
        )),
        None => state.refs.property(&id_field, kind, id).await,
    }
}

/// The scope of a List of tasks or notes confined to a kind of record (`type_column`,
/// empty means any) or one record (`id_column`, 0 means any): checked, and named after
/// the request fields, which share the columns' names.
pub(crate) fn subject_scope(
    type_column: &'static str,
    id_column: &'static str,
    kind: &str,
    id: i64,
) -> Result<Vec<(&'static str, fusion_db::list::ScopeValue)>, CrmError> {
    let kind = kind.trim();
    let mut scope = Vec::new();
    if !kind.is_empty() {
        if !crate::refs::SUBJECTS.contains(&kind) {
            return Err(CrmError::invalid(
                type_column,
                format!("must be one of: {}", crate::refs::SUBJECTS.join(", ")),
            ));
        }
        scope.push((
            type_column,
            fusion_db::list::ScopeValue::Text(kind.to_owned()),
        ));
    }
    if id != 0 {
        if kind.is_empty() {
            return Err(CrmError::invalid(
                type_column,
                format!("is required with {id_column} (ids are per kind of record)"),
            ));
        }
        fusion_db::resource::require_id(DOMAIN, id_column, id)?;
        scope.push((id_column, fusion_db::list::ScopeValue::Int(id)));
    }
    Ok(scope)
}
