//! Leads: their row, their description for the standard methods, and their checks.

use chrono::{DateTime, Utc};

use fusion_db::TenantTx;
use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::{Table, Val, Values};
use fusion_proto::crm::v1 as pb;
use fusion_service::api::{opt_ts, populated, ts};
use fusion_service::standard::{Call, Kit, Method, Resource};
use prost_types::FieldMask;

use crate::domain::{pipeline, validate};
use crate::error::CrmError;
use crate::store::person::{self, Person, PersonRow, person_values, sets};
use crate::store::pipeline::{default_lead_status, require_deal_stage, require_lead_status};
use crate::{AppState, DOMAIN};
use fusion_db::PgConnection;

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "crm.leads",
    select: "id, tenant_id, assigned_to, first_name, last_name, email, phone, phone_e164, \
             address, suburb, state, postcode, country, source, source_detail, status, stage, \
             score, tags, custom_fields, notes, last_contacted_at, converted_at, \
             converted_contact_id, converted_deal_id, merged_into_id, version, created_at, \
             updated_at, deleted_at",
    what: "lead",
};

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("assignee_user_id", "assigned_to", FieldKind::Int),
    FieldSpec::new("first_name", "first_name", FieldKind::Text),
    FieldSpec::new("last_name", "last_name", FieldKind::Text),
    FieldSpec::new("email", "email", FieldKind::Text),
    FieldSpec::new("phone", "phone", FieldKind::Text),
    FieldSpec::new("phone_e164", "phone_e164", FieldKind::Text),
    FieldSpec::new("suburb", "suburb", FieldKind::Text),
    FieldSpec::new("state", "state", FieldKind::Text),
    FieldSpec::new("postcode", "postcode", FieldKind::Text),
    FieldSpec::new("country", "country", FieldKind::Text),
    FieldSpec::new("address", "address", FieldKind::Text),
    FieldSpec::new("source", "source", FieldKind::Text),
    FieldSpec::new("source_detail", "source_detail", FieldKind::Text),
    FieldSpec::new("notes", "notes", FieldKind::Text),
    FieldSpec::new("status", "status", FieldKind::Text),
    FieldSpec::new("stage", "stage", FieldKind::Text),
    FieldSpec::new("score", "score", FieldKind::Int),
    FieldSpec::new("tags", "tags", FieldKind::Tags),
    FieldSpec::new("custom_fields", "custom_fields", FieldKind::CustomFields),
    FieldSpec::new(
        "last_contact_time",
        "last_contacted_at",
        FieldKind::Timestamp,
    ),
    FieldSpec::new("convert_time", "converted_at", FieldKind::Timestamp),
    FieldSpec::new(
        "converted_contact_id",
        "converted_contact_id",
        FieldKind::Int,
    ),
    FieldSpec::new("converted_deal_id", "converted_deal_id", FieldKind::Int),
    FieldSpec::new("merged_into_id", "merged_into_id", FieldKind::Int),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
    FieldSpec::new("update_time", "updated_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &[
        "create_time",
        "update_time",
        "last_name",
        "first_name",
        "score",
        "status",
        "last_contact_time",
    ],
    default_order: "create_time desc",
    soft_delete: true,
    tenant_scoped: true,
};

/// What UpdateLead may change (the assignee goes through AssignLead, the status
/// through SetLeadStatus).
pub(crate) const MUTABLE: &[&str] = &[
    "first_name",
    "last_name",
    "email",
    "phone",
    "address",
    "suburb",
    "state",
    "postcode",
    "country",
    "source",
    "source_detail",
    "stage",
    "score",
    "tags",
    "custom_fields",
    "notes",
    "last_contact_time",
];

pub(crate) const OUTPUT_ONLY: &[&str] = &[
    "assignee_user_id",
    "status",
    "phone_e164",
    "convert_time",
    "converted_contact_id",
    "converted_deal_id",
    "merged_into_id",
];

#[derive(sqlx::FromRow)]
pub(crate) struct LeadRow {
    pub id: i64,
    pub tenant_id: i64,
    pub assigned_to: Option<i64>,
    #[sqlx(flatten)]
    pub person: PersonRow,
    pub source: Option<String>,
    pub source_detail: Option<String>,
    pub status: String,
    pub stage: Option<String>,
    pub score: Option<i32>,
    pub converted_at: Option<DateTime<Utc>>,
    pub converted_contact_id: Option<i64>,
    pub converted_deal_id: Option<i64>,
    pub merged_into_id: Option<i64>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(LeadRow);

impl LeadRow {
    pub(crate) fn into_pb(self, state: &AppState) -> pb::Lead {
        pb::Lead {
            id: self.id,
            tenant_id: self.tenant_id,
            assignee_user_id: self.assigned_to.unwrap_or_default(),
            source: self.source.unwrap_or_default(),
            source_detail: self.source_detail.unwrap_or_default(),
            status: self.status,
            stage: self.stage.unwrap_or_default(),
            score: self.score,
            convert_time: opt_ts(self.converted_at),
            converted_contact_id: self.converted_contact_id.unwrap_or_default(),
            converted_deal_id: self.converted_deal_id.unwrap_or_default(),
            merged_into_id: self.merged_into_id.unwrap_or_default(),
            create_time: Some(ts(self.created_at)),
            update_time: Some(ts(self.updated_at)),
            delete_time: opt_ts(self.deleted_at),
            purge_time: state.kit.purge_time(self.deleted_at),
            etag: fusion_service::api::etag(self.version),
            ..pb::Lead::from_person(self.person)
        }
    }
}

/// The fields CreateLead stores: the mutable ones and the first assignee.
pub(crate) const CREATE: &[&str] = &[
    "assignee_user_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "address",
    "suburb",
    "state",
    "postcode",
    "country",
    "source",
    "source_detail",
    "status",
    "stage",
    "score",
    "tags",
    "custom_fields",
    "notes",
    "last_contact_time",
];

/// The column values of the fields in `fields`, validated field by field; `status`
/// and `stage` are checked against the pipeline separately, in the transaction, and
/// the E.164 phone by [`person::set_e164`]. A Create without a status takes the tenant's
/// first open one; an Update naming it must send one.
pub(crate) fn values(l: &pb::Lead, fields: &[&str], method: Method) -> Result<Values, CrmError> {
    person_values("lead", l, fields, |field| {
        Ok(Some(match field {
            // Checked with identity in the transaction.
            "assignee_user_id" => match l.assignee_user_id {
                0 => return Ok(None),
                id if id < 0 => return Err("must be a positive id".into()),
                id => ("assigned_to", Val::Int(Some(id))),
            },
            "source" => {
                validate::max_len(&l.source, 100)?;
                ("source", Val::text(&l.source))
            }
            "source_detail" => {
                validate::max_len(&l.source_detail, 255)?;
                ("source_detail", Val::text(&l.source_detail))
            }
            "status" => {
                if l.status.trim().is_empty() {
                    return match method {
                        Method::Create => Ok(None),
                        Method::Update => Err("is required".into()),
                    };
                }
                pipeline::key(l.status.trim())?;
                ("status", Val::text(&l.status))
            }
            "stage" => {
                if !l.stage.trim().is_empty() {
                    pipeline::key(l.stage.trim())?;
                }
                ("stage", Val::text(&l.stage))
            }
            "score" => match l.score {
                Some(s) if !(0..=100).contains(&s) => {
                    return Err("must be between 0 and 100".into());
                }
                s => ("score", Val::Int32(s)),
            },
            _ => return Ok(None),
        }))
    })
}

/// Checks `status` and `stage` against the tenant's live pipeline when they are set.
pub(crate) async fn check_pipeline(
    tx: &mut TenantTx,
    status: Option<&str>,
    stage: Option<&str>,
) -> Result<(), CrmError> {
    if let Some(status) = status {
        require_lead_status(tx, "lead.status", status.trim()).await?;
    }
    if let Some(stage) = stage.filter(|s| !s.trim().is_empty()) {
        require_deal_stage(tx, "lead.stage", stage.trim()).await?;
    }
    Ok(())
}

/// Whether an UpdateLead may change the stage (and so needs the tenant's pipeline):
/// its mask names it, or it has none and sends one.
pub(crate) fn may_change_pipeline(mask: Option<&FieldMask>, l: &pb::Lead) -> bool {
    match mask {
        Some(m) if !m.paths.is_empty() => {
            m.paths.iter().any(|p| matches!(p.as_str(), "*" | "stage"))
        }
        _ => !l.stage.is_empty(),
    }
}

/// Leads on the standard methods: the phone's E.164 form follows the phone and the
/// country, the status and stage name live keys of the tenant's pipeline (a new lead
/// without a status takes the first open one), the first assignee is an active user
/// of the tenant, and a lead merged into another cannot be restored.
pub(crate) struct Leads;

impl Resource for Leads {
    type Row = LeadRow;
    type Pb = pb::Lead;
    type State = AppState;
    type Error = CrmError;

    const SINGULAR: &'static str = "Lead";
    const FIELD: &'static str = "lead";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = CREATE;
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = OUTPUT_ONLY;

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, row: LeadRow) -> pb::Lead {
        row.into_pb(state)
    }

    fn id(l: &pb::Lead) -> i64 {
        l.id
    }

    fn etag(l: &pb::Lead) -> &str {
        &l.etag
    }

    fn populated(l: &pb::Lead) -> Vec<&'static str> {
        populated(
            &[
                &l.person().populated()[..],
                &[
                    ("source", !l.source.is_empty()),
                    ("source_detail", !l.source_detail.is_empty()),
                    ("stage", !l.stage.is_empty()),
                    ("score", l.score.is_some()),
                ],
            ]
            .concat(),
        )
    }

    fn values(
        _: &AppState,
        l: &pb::Lead,
        fields: &[&str],
        method: Method,
    ) -> Result<Values, CrmError> {
        values(l, fields, method)
    }

    async fn on_create(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        l: &pb::Lead,
        values: &mut Values,
    ) -> Result<(), CrmError> {
        person::on_create(call.state, tx, l, values).await?;
        if l.assignee_user_id != 0 {
            call.state
                .refs
                .user("lead.assignee_user_id", l.assignee_user_id)
                .await?;
        }
        if l.status.trim().is_empty() {
            let status = default_lead_status(tx).await?;
            values.push(("status", Val::Text(Some(status))));
            Ok(check_pipeline(tx, None, Some(&l.stage)).await?)
        } else {
            Ok(check_pipeline(tx, Some(&l.status), Some(&l.stage)).await?)
        }
    }

    async fn on_update(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &LeadRow,
        l: &pb::Lead,
        values: &mut Values,
    ) -> Result<(), CrmError> {
        person::on_update(call.state, tx, &current.person, l, values).await?;
        // The status changes only through SetLeadStatus.
        if sets(values, "stage") {
            check_pipeline(tx, None, Some(l.stage.as_str())).await?;
        }
        Ok(())
    }

    async fn on_undelete(
        _: &Call<'_, AppState>,
        _: &mut TenantTx,
        lead: &LeadRow,
    ) -> Result<(), CrmError> {
        person::on_undelete("lead", lead.id, lead.merged_into_id)
    }
}

/// Which of the normalised `emails` live leads of the tenant already hold (for an
/// import's dedupe).
pub(crate) async fn live_emails(
    conn: &mut PgConnection,
    emails: &[String],
) -> Result<Vec<String>, fusion_db::Error> {
    sqlx::query_scalar(
        "SELECT email_normalized FROM crm.leads
          WHERE email_normalized = ANY($1) AND deleted_at IS NULL",
    )
    .bind(emails)
    .fetch_all(conn)
    .await
    .map_err(|e| fusion_db::Error::from_sqlx(DOMAIN, e))
}

/// The `crm.lead.converted` event type (fusion.crm.v1.LeadConverted).
pub(crate) const LEAD_CONVERTED: &str = "crm.lead.converted";

/// Writes `crm.lead.converted` for `lead` (as ConvertLead left it, holding its row
/// lock) to the outbox, in the conversion's transaction: ai-marketing counts the
/// conversion for the campaigns targeting the lead. `actor` is the user who converted
/// it.
pub(crate) async fn announce_converted(
    tx: &mut TenantTx,
    lead: &LeadRow,
    actor: i64,
) -> Result<(), CrmError> {
    let (Some(converted_at), Some(contact_id)) = (lead.converted_at, lead.converted_contact_id)
    else {
        return Err(CrmError::Internal(
            "a converted lead has a convert time and a contact",
        ));
    };
    let converted = pb::LeadConverted {
        lead_id: lead.id,
        contact_id,
        deal_id: lead.converted_deal_id.unwrap_or_default(),
        acting_user_id: actor,
        convert_time: Some(ts(converted_at)),
    };
    let event = fusion_events::Event::new(LEAD_CONVERTED, lead.id, &converted);
    fusion_events::outbox::append(tx, crate::SCHEMA, event).await?;
    Ok(())
}
