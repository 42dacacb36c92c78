//! Contacts: their row, their description for the standard methods, and their checks.

use chrono::{DateTime, Utc};

use fusion_db::TenantTx;
use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::{Table, Val, Values};
use fusion_proto::crm::v1 as pb;
use fusion_service::api::{opt_ts, populated, ts};
use fusion_service::standard::{Call, Kit, Method, Resource};

use crate::domain::validate;
use crate::error::CrmError;
use crate::store::person::{self, Person, PersonRow, person_values};
use crate::{AppState, DOMAIN};

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "crm.contacts",
    select: "id, tenant_id, lead_id, first_name, last_name, email, phone, phone_e164, \
             company, position, address, suburb, state, postcode, country, contact_type, \
             tags, custom_fields, notes, last_contacted_at, merged_into_id, version, \
             created_at, updated_at, deleted_at",
    what: "contact",
};

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("lead_id", "lead_id", FieldKind::Int),
    FieldSpec::new("first_name", "first_name", FieldKind::Text),
    FieldSpec::new("last_name", "last_name", FieldKind::Text),
    FieldSpec::new("email", "email", FieldKind::Text),
    FieldSpec::new("phone", "phone", FieldKind::Text),
    FieldSpec::new("phone_e164", "phone_e164", FieldKind::Text),
    FieldSpec::new("company", "company", FieldKind::Text),
    FieldSpec::new("job_title", "position", FieldKind::Text),
    FieldSpec::new("suburb", "suburb", FieldKind::Text),
    FieldSpec::new("state", "state", FieldKind::Text),
    FieldSpec::new("postcode", "postcode", FieldKind::Text),
    FieldSpec::new("country", "country", FieldKind::Text),
    FieldSpec::new("contact_type", "contact_type", FieldKind::Text),
    FieldSpec::new("tags", "tags", FieldKind::Tags),
    FieldSpec::new("custom_fields", "custom_fields", FieldKind::CustomFields),
    FieldSpec::new(
        "last_contact_time",
        "last_contacted_at",
        FieldKind::Timestamp,
    ),
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
        "company",
        "last_contact_time",
    ],
    default_order: "create_time desc",
    soft_delete: true,
    tenant_scoped: true,
};

/// The fields CreateContact stores (with `phone_e164`, see [`person::set_e164`]). Not
/// `lead_id`: it is output only, set by ConvertLead and re-pointed by merges.
pub(crate) const CREATE: &[&str] = &[
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "job_title",
    "address",
    "suburb",
    "state",
    "postcode",
    "country",
    "contact_type",
    "tags",
    "custom_fields",
    "notes",
    "last_contact_time",
];

/// What UpdateContact may change: everything CreateContact stores.
pub(crate) const MUTABLE: &[&str] = CREATE;

pub(crate) const OUTPUT_ONLY: &[&str] = &[
    "id",
    "tenant_id",
    "lead_id",
    "phone_e164",
    "merged_into_id",
    "create_time",
    "update_time",
    "delete_time",
    "purge_time",
];

#[derive(sqlx::FromRow)]
pub(crate) struct ContactRow {
    pub id: i64,
    pub tenant_id: i64,
    pub lead_id: Option<i64>,
    #[sqlx(flatten)]
    pub person: PersonRow,
    pub company: Option<String>,
    pub position: Option<String>,
    pub contact_type: Option<String>,
    pub merged_into_id: Option<i64>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(ContactRow);

impl ContactRow {
    pub(crate) fn into_pb(self, state: &AppState) -> pb::Contact {
        pb::Contact {
            id: self.id,
            tenant_id: self.tenant_id,
            lead_id: self.lead_id.unwrap_or_default(),
            company: self.company.unwrap_or_default(),
            job_title: self.position.unwrap_or_default(),
            contact_type: self.contact_type.unwrap_or_default(),
            merged_into_id: self.merged_into_id.unwrap_or_default(),
            create_time: Some(ts(self.created_at)),
            update_time: Some(ts(self.updated_at)),
            delete_time: opt_ts(self.deleted_at),
            purge_time: state.kit.purge_time(self.deleted_at),
            etag: fusion_service::api::etag(self.version),
            ..pb::Contact::from_person(self.person)
        }
    }
}

/// The column values of the fields in `fields` (e.g. [`CREATE`]), validated field by
/// field with violations named `contact.<field>`. Not among them: `phone_e164` (see
/// [`person::set_e164`]) and `lead_id` (output only: ConvertLead sets it).
pub(crate) fn values(c: &pb::Contact, fields: &[&str]) -> Result<Values, CrmError> {
    person_values("contact", c, fields, |field| {
        Ok(Some(match field {
            "company" => {
                validate::max_len(&c.company, 255)?;
                ("company", Val::text(&c.company))
            }
            "job_title" => {
                validate::max_len(&c.job_title, 255)?;
                ("position", Val::text(&c.job_title))
            }
            "contact_type" => {
                validate::max_len(&c.contact_type, 50)?;
                ("contact_type", Val::text(&c.contact_type))
            }
            _ => return Ok(None),
        }))
    })
}

/// Contacts on the standard methods: the phone's E.164 form follows the phone and the
/// country, the lead a contact came from is set only by ConvertLead (and merges), and
/// a contact merged into another cannot be restored.
pub(crate) struct Contacts;

impl Resource for Contacts {
    type Row = ContactRow;
    type Pb = pb::Contact;
    type State = AppState;
    type Error = CrmError;

    const SINGULAR: &'static str = "Contact";
    const FIELD: &'static str = "contact";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] = CREATE;
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = OUTPUT_ONLY;

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, row: ContactRow) -> pb::Contact {
        row.into_pb(state)
    }

    fn id(c: &pb::Contact) -> i64 {
        c.id
    }

    fn etag(c: &pb::Contact) -> &str {
        &c.etag
    }

    fn populated(c: &pb::Contact) -> Vec<&'static str> {
        populated(
            &[
                &c.person().populated()[..],
                &[
                    ("company", !c.company.is_empty()),
                    ("job_title", !c.job_title.is_empty()),
                    ("contact_type", !c.contact_type.is_empty()),
                ],
            ]
            .concat(),
        )
    }

    fn values(
        _: &AppState,
        c: &pb::Contact,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, CrmError> {
        values(c, fields)
    }

    async fn on_create(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        c: &pb::Contact,
        values: &mut Values,
    ) -> Result<(), CrmError> {
        person::on_create(call.state, tx, c, values).await
    }

    async fn on_update(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        current: &ContactRow,
        c: &pb::Contact,
        values: &mut Values,
    ) -> Result<(), CrmError> {
        person::on_update(call.state, tx, &current.person, c, values).await
    }

    async fn on_undelete(
        _: &Call<'_, AppState>,
        _: &mut TenantTx,
        contact: &ContactRow,
    ) -> Result<(), CrmError> {
        person::on_undelete("contact", contact.id, contact.merged_into_id)
    }
}
