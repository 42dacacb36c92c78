//! The fields leads and contacts share — names, email, phone (as entered and in
//! E.164), address, suburb, state, postcode, country, tags, custom fields, notes and
//! the last contact time — checked, stored and read back by one piece of code for both.
//!
//! A row type flattens [`PersonRow`] into itself; a message (`pb::Lead`,
//! `pb::Contact`) implements [`Person`], which reads its shared fields as a
//! [`PersonRef`] and builds it from a [`PersonRow`].

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

use fusion_db::resource::{Val, Values};
use fusion_proto::crm::v1 as pb;
use fusion_service::api::opt_ts;

use crate::AppState;
use crate::domain::fields::{country_of, e164, phone};
use crate::domain::validate;
use crate::error::CrmError;
use crate::store::{contact_time, custom_fields_pb, record_values, tags_of, tags_val};

/// The shared columns of a stored lead or contact (flatten it into the row type).
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct PersonRow {
    pub first_name: Option<String>,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub phone_e164: Option<String>,
    pub address: Option<String>,
    pub suburb: Option<String>,
    pub state: Option<String>,
    pub postcode: Option<String>,
    pub country: Option<String>,
    pub tags: serde_json::Value,
    pub custom_fields: serde_json::Value,
    pub notes: Option<String>,
    pub last_contacted_at: Option<DateTime<Utc>>,
}

/// The shared fields of a message as the caller sent them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PersonRef<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
    pub address: &'a str,
    pub suburb: &'a str,
    pub state: &'a str,
    pub postcode: &'a str,
    pub country: &'a str,
    pub tags: &'a [String],
    pub custom_fields: &'a [pb::CustomField],
    pub notes: &'a str,
    pub last_contact_time: Option<&'a Timestamp>,
}

/// A message carrying the shared fields.
pub(crate) trait Person: Default {
    /// Its shared fields.
    fn person(&self) -> PersonRef<'_>;
    /// A message with the shared fields of `row` and every other field default (fill
    /// those with struct-update syntax).
    fn from_person(row: PersonRow) -> Self;
}

/// Implements [`Person`] for messages whose shared fields have the same names.
macro_rules! person {
    ($($msg:ty),+ $(,)?) => {$(
        impl Person for $msg {
            fn person(&self) -> PersonRef<'_> {
                PersonRef {
                    first_name: &self.first_name,
                    last_name: &self.last_name,
                    email: &self.email,
                    phone: &self.phone,
                    address: &self.address,
                    suburb: &self.suburb,
                    state: &self.state,
                    postcode: &self.postcode,
                    country: &self.country,
                    tags: &self.tags,
                    custom_fields: &self.custom_fields,
                    notes: &self.notes,
                    last_contact_time: self.last_contact_time.as_ref(),
                }
            }

            fn from_person(row: PersonRow) -> Self {
                Self {
                    first_name: row.first_name.unwrap_or_default(),
                    last_name: row.last_name,
                    email: row.email.unwrap_or_default(),
                    phone: row.phone.unwrap_or_default(),
                    phone_e164: row.phone_e164.unwrap_or_default(),
                    address: row.address.unwrap_or_default(),
                    suburb: row.suburb.unwrap_or_default(),
                    state: row.state.unwrap_or_default(),
                    postcode: row.postcode.unwrap_or_default(),
                    country: row.country.unwrap_or_default(),
                    tags: tags_of(&row.tags),
                    custom_fields: custom_fields_pb(&row.custom_fields),
                    notes: row.notes.unwrap_or_default(),
                    last_contact_time: opt_ts(row.last_contacted_at),
                    ..Default::default()
                }
            }
        }
    )+};
}

person!(pb::Lead, pb::Contact);

impl PersonRef<'_> {
    /// The column value of shared field `field`, checked; `None` when `field` is not a
    /// shared field (`custom_fields` is checked by [`record_values`]).
    fn value(&self, field: &str) -> Result<Option<(&'static str, Val)>, String> {
        let text = |column: &'static str, s: &str, max: usize| {
            validate::max_len(s, max).map(|()| Some((column, Val::text(s))))
        };
        match field {
            "first_name" => text("first_name", self.first_name, 100),
            "last_name" => {
                validate::required(self.last_name, 100)?;
                Ok(Some(("last_name", Val::text(self.last_name))))
            }
            "email" => {
                validate::email(self.email)?;
                Ok(Some(("email", Val::text(self.email))))
            }
            "phone" => {
                phone(self.phone)?;
                Ok(Some(("phone", Val::text(self.phone))))
            }
            "address" => text("address", self.address, 255),
            "suburb" => text("suburb", self.suburb, 100),
            "state" => text("state", self.state, 100),
            "postcode" => text("postcode", self.postcode, 20),
            "country" => text("country", self.country, 100),
            "tags" => Ok(Some(("tags", tags_val(self.tags)?))),
            "notes" => text("notes", self.notes, 20_000),
            "last_contact_time" => Ok(Some((
                "last_contacted_at",
                contact_time(&self.last_contact_time.cloned())?,
            ))),
            _ => Ok(None),
        }
    }

    /// Which shared fields are set, for an Update without a mask.
    pub(crate) fn populated(&self) -> [(&'static str, bool); 13] {
        [
            ("first_name", !self.first_name.is_empty()),
            ("last_name", !self.last_name.is_empty()),
            ("email", !self.email.is_empty()),
            ("phone", !self.phone.is_empty()),
            ("address", !self.address.is_empty()),
            ("suburb", !self.suburb.is_empty()),
            ("state", !self.state.is_empty()),
            ("postcode", !self.postcode.is_empty()),
            ("country", !self.country.is_empty()),
            ("tags", !self.tags.is_empty()),
            ("custom_fields", !self.custom_fields.is_empty()),
            ("notes", !self.notes.is_empty()),
            ("last_contact_time", self.last_contact_time.is_some()),
        ]
    }
}

/// The column values of the fields of `msg` named in `fields`, checked field by field
/// with a violation named `<prefix>.<field>` for each that fails: the shared fields
/// here, the others by `own` (which answers `None` for a field it does not store).
/// `phone_e164` is not among them: see [`set_e164`] and [`refresh_e164`].
pub(crate) fn person_values<M: Person>(
    prefix: &str,
    msg: &M,
    fields: &[&str],
    mut own: impl FnMut(&str) -> Result<Option<(&'static str, Val)>, String>,
) -> Result<Values, CrmError> {
    let person = msg.person();
    record_values(prefix, fields, person.custom_fields, |field| {
        match person.value(field)? {
            Some(value) => Ok(Some(value)),
            None => own(field),
        }
    })
}

/// The country the caller's tenant reads phone numbers in: its CRM settings, else the
/// service's configured default.
pub(crate) async fn tenant_country(
    state: &AppState,
    conn: &mut sqlx::PgConnection,
) -> Result<phonenumber::country::Id, CrmError> {
    let code: Option<String> =
        sqlx::query_scalar("SELECT default_country FROM crm.tenant_settings")
            .fetch_optional(conn)
            .await?;
    Ok(code
        .and_then(|c| c.parse().ok())
        .unwrap_or(state.config.default_country))
}

/// Sets (replacing any) the E.164 form of `phone`, read in `country` (`default`, the
/// tenant's country, when it names none); empty when `phone` is empty or not a valid
/// number.
pub(crate) fn set_e164(
    values: &mut Values,
    phone: &str,
    country: &str,
    default: phonenumber::country::Id,
) {
    let e = e164(phone, country_of(country, default));
    values.retain(|(c, _)| *c != "phone_e164");
    values.push(("phone_e164", Val::Text(e)));
}

/// Whether `values` sets column `column`.
pub(crate) fn sets(values: &Values, column: &str) -> bool {
    values.iter().any(|(c, _)| *c == column)
}

/// A Create's hook for the shared fields: stores the E.164 form of the phone sent, read
/// in the country sent (else the tenant's).
pub(crate) async fn on_create<M: Person>(
    state: &AppState,
    conn: &mut sqlx::PgConnection,
    msg: &M,
    values: &mut Values,
) -> Result<(), CrmError> {
    let sent = msg.person();
    let country = tenant_country(state, conn).await?;
    set_e164(values, sent.phone, sent.country, country);
    Ok(())
}

/// An Update's hook for the shared fields: the E.164 phone follows a changed phone or
/// country (see [`refresh_e164`]).
pub(crate) async fn on_update<M: Person>(
    state: &AppState,
    conn: &mut sqlx::PgConnection,
    current: &PersonRow,
    msg: &M,
    values: &mut Values,
) -> Result<(), CrmError> {
    let country = tenant_country(state, conn).await?;
    refresh_e164(values, msg.person(), current, country);
    Ok(())
}

/// An Undelete's hook for leads and contacts: `what` `id`, merged into another record,
/// stays deleted (its survivor holds what it had).
pub(crate) fn on_undelete(
    what: &'static str,
    id: i64,
    merged_into_id: Option<i64>,
) -> Result<(), CrmError> {
    match merged_into_id {
        Some(survivor) => Err(CrmError::Merged { what, id, survivor }),
        None => Ok(()),
    }
}

/// On an Update: recomputes the E.164 phone when `values` change the phone or the
/// country, from the sent values of the changed ones and the `current` row's others.
pub(crate) fn refresh_e164(
    values: &mut Values,
    sent: PersonRef<'_>,
    current: &PersonRow,
    default: phonenumber::country::Id,
) {
    let (phone_changes, country_changes) = (sets(values, "phone"), sets(values, "country"));
    if !phone_changes && !country_changes {
        return;
    }
    let phone = if phone_changes {
        sent.phone
    } else {
        current.phone.as_deref().unwrap_or_default()
    };
    let country = if country_changes {
        sent.country
    } else {
        current.country.as_deref().unwrap_or_default()
    };
    set_e164(values, phone, country, default);
}
