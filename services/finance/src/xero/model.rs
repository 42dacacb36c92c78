//! What goes over the wire to and from Xero, typed.
//!
//! The Accounting API speaks PascalCase JSON with amounts as JSON numbers and dates in
//! responses in Microsoft's `/Date(1539993600000+0000)/` form (requests may send
//! `2024-01-31`); the identity endpoints and `/connections` speak snake_case and
//! camelCase. Amounts are [`Decimal`] on our side: they go out as the number whose
//! shortest decimal form is the amount, and come back exactly as written.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An organisation (tenant, in Xero's words) the user connected to our app, from
/// `GET /connections`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// The connection itself; `DELETE /connections/{id}` disconnects it.
    pub id: Uuid,
    /// The organisation: the `Xero-tenant-id` of every Accounting API call.
    pub tenant_id: Uuid,
    /// `ORGANISATION` for an accounting organisation.
    pub tenant_type: String,
    /// The organisation's name, for people to recognise it.
    #[serde(default)]
    pub tenant_name: Option<String>,
}

/// Who a call is made as and for which organisation.
#[derive(Clone)]
pub struct XeroSession {
    /// A current access token.
    pub access_token: String,
    /// The organisation, as `Connection::tenant_id`.
    pub tenant_id: Uuid,
}

impl std::fmt::Debug for XeroSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XeroSession")
            .field("access_token", &"<hidden>")
            .field("tenant_id", &self.tenant_id)
            .finish()
    }
}

/// A contact to create in Xero; Xero wants contact names unique per organisation.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct NewContact {
    /// The name, as it will show in Xero.
    pub name: String,
    /// Where Xero sends the invoice, if anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
}

/// A contact as Xero holds it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Contact {
    /// Xero's id for it, kept as `xero_contact_id`.
    #[serde(rename = "ContactID")]
    pub contact_id: Uuid,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its email address.
    #[serde(default)]
    pub email_address: Option<String>,
}

/// The reference to a contact inside an invoice we send.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct ContactRef {
    /// Xero's id for the contact.
    #[serde(rename = "ContactID")]
    pub contact_id: Uuid,
}

/// The kind of invoice: ours are always sales invoices (accounts receivable).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum InvoiceType {
    /// A sales invoice.
    #[serde(rename = "ACCREC")]
    Receivable,
    /// A bill (accounts payable); only ever read, never sent.
    #[serde(rename = "ACCPAY")]
    Payable,
}

/// Whether line amounts include tax.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum LineAmountTypes {
    /// Line amounts exclude tax; tax is added on top.
    Exclusive,
    /// Line amounts include tax.
    Inclusive,
    /// No tax at all.
    NoTax,
}

/// An invoice's status in Xero.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvoiceStatus {
    /// Being drafted.
    Draft,
    /// Awaiting approval.
    Submitted,
    /// Approved and awaiting payment.
    Authorised,
    /// Paid in full.
    Paid,
    /// Cancelled after approval.
    Voided,
    /// Deleted as a draft.
    Deleted,
}

/// One line of an invoice, sent and received alike. Our server computes `LineAmount`
/// and `TaxAmount` exactly and sends them, so that Xero's totals are ours.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct LineItem {
    /// Xero's id for the line, kept as `xero_line_item_id`; sent on update so that Xero
    /// changes the line in place instead of replacing it.
    #[serde(
        rename = "LineItemID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub line_item_id: Option<Uuid>,
    /// What was sold.
    pub description: String,
    /// How many.
    #[serde(with = "amount")]
    pub quantity: Decimal,
    /// The price of one.
    #[serde(with = "amount")]
    pub unit_amount: Decimal,
    /// Quantity × unit amount (less any discount), as computed by our server.
    #[serde(
        with = "amount::optional",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub line_amount: Option<Decimal>,
    /// The line's tax.
    #[serde(
        with = "amount::optional",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tax_amount: Option<Decimal>,
    /// The revenue account in the organisation's chart of accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_code: Option<String>,
    /// The organisation's tax rate code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_type: Option<String>,
}

/// An invoice as we send it, to create (`PUT Invoices`) or to update
/// (`POST Invoices/{InvoiceID}`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct NewInvoice {
    /// Always [`InvoiceType::Receivable`] for ours.
    #[serde(rename = "Type")]
    pub kind: InvoiceType,
    /// The customer, created beforehand.
    pub contact: ContactRef,
    /// The invoice date.
    pub date: NaiveDate,
    /// When payment is due.
    pub due_date: NaiveDate,
    /// Whether the line amounts include tax.
    pub line_amount_types: LineAmountTypes,
    /// The lines.
    pub line_items: Vec<LineItem>,
    /// Our invoice number, so that both systems show the same one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_number: Option<String>,
    /// A free reference shown on the invoice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// ISO 4217; the organisation's base currency when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
    /// The status to create it in or move it to.
    pub status: InvoiceStatus,
}

/// A payment against an invoice, recorded in Xero.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Payment {
    /// Xero's id for the payment.
    #[serde(rename = "PaymentID")]
    pub payment_id: Uuid,
    /// When it was paid.
    #[serde(with = "date")]
    pub date: NaiveDate,
    /// How much.
    #[serde(with = "amount")]
    pub amount: Decimal,
    /// The payer's reference, if any.
    #[serde(default)]
    pub reference: Option<String>,
}

/// An invoice as Xero holds it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Invoice {
    /// Xero's id, kept as `xero_invoice_id`.
    #[serde(rename = "InvoiceID")]
    pub invoice_id: Uuid,
    /// Sales or purchase.
    #[serde(rename = "Type")]
    pub kind: InvoiceType,
    /// The invoice number.
    #[serde(default)]
    pub invoice_number: Option<String>,
    /// The reference.
    #[serde(default)]
    pub reference: Option<String>,
    /// Its status.
    pub status: InvoiceStatus,
    /// The customer.
    pub contact: Contact,
    /// The invoice date.
    #[serde(with = "date::optional", default)]
    pub date: Option<NaiveDate>,
    /// When payment is due.
    #[serde(with = "date::optional", default)]
    pub due_date: Option<NaiveDate>,
    /// Whether the line amounts include tax.
    #[serde(default)]
    pub line_amount_types: Option<LineAmountTypes>,
    /// The lines (absent from an unpaged list).
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    /// The currency.
    #[serde(default)]
    pub currency_code: Option<String>,
    /// Total excluding tax.
    #[serde(with = "amount::optional", default)]
    pub sub_total: Option<Decimal>,
    /// Total tax.
    #[serde(with = "amount::optional", default)]
    pub total_tax: Option<Decimal>,
    /// Total including tax.
    #[serde(with = "amount::optional", default)]
    pub total: Option<Decimal>,
    /// Paid so far.
    #[serde(with = "amount::optional", default)]
    pub amount_paid: Option<Decimal>,
    /// Still owed.
    #[serde(with = "amount::optional", default)]
    pub amount_due: Option<Decimal>,
    /// The payments made.
    #[serde(default)]
    pub payments: Vec<Payment>,
    /// When Xero last changed it.
    #[serde(rename = "UpdatedDateUTC", with = "date::instant")]
    pub updated_date_utc: DateTime<Utc>,
}

/// The envelope the Accounting API wraps invoices in, both ways.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Invoices<T> {
    pub invoices: Vec<T>,
}

/// The envelope the Accounting API wraps contacts in, both ways.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Contacts<T> {
    pub contacts: Vec<T>,
}

/// Amounts as JSON numbers: written as the `f64` nearest the decimal (whose shortest
/// form is the decimal itself for any amount of up to 15 significant digits), read
/// from a number or a string without passing through binary fractions twice.
pub(crate) mod amount {
    use std::str::FromStr;

    use rust_decimal::Decimal;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        let number: f64 = value
            .to_string()
            .parse()
            .map_err(|_| serde::ser::Error::custom("an amount that is not a number"))?;
        serializer.serialize_f64(number)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        deserializer.deserialize_any(AmountVisitor)
    }

    struct AmountVisitor;

    impl Visitor<'_> for AmountVisitor {
        type Value = Decimal;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an amount, as a number or a string")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
            // `f64`'s `Display` is the shortest form that reads back as `v`: the
            // decimal the sender wrote.
            Decimal::from_str(&v.to_string()).map_err(E::custom)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            Decimal::from_str(v.trim()).map_err(E::custom)
        }
    }

    /// The same for an optional amount (absent or `null` is `None`).
    pub mod optional {
        use rust_decimal::Decimal;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            value: &Option<Decimal>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(value) => super::serialize(value, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Decimal>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] Decimal);
            Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(v)| v))
        }
    }
}

/// Dates as the Accounting API writes them: `/Date(1539993600000+0000)/` (milliseconds
/// since the epoch, UTC, and an offset that is informational), or ISO 8601
/// (`2024-01-31`, `2024-01-31T00:00:00`) as some endpoints and older payloads do.
pub(crate) mod date {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    use serde::{Deserialize, Deserializer};

    /// The instant `text` names, in any of the forms Xero writes.
    pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
        let text = text.trim();
        if let Some(inner) = text
            .strip_prefix("/Date(")
            .and_then(|rest| rest.strip_suffix(")/"))
        {
            let millis = inner
                .find(['+', '-'])
                .filter(|&at| at > 0)
                .map_or(inner, |at| &inner[..at]);
            return DateTime::from_timestamp_millis(millis.parse().ok()?);
        }
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Some(at.with_timezone(&Utc));
        }
        if let Ok(at) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
            return Some(at.and_utc());
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|at| at.and_utc())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_instant(&text)
            .map(|at| at.date_naive())
            .ok_or_else(|| serde::de::Error::custom(format!("not a Xero date: {text:?}")))
    }

    /// An optional date (absent or `null` is `None`).
    pub mod optional {
        use chrono::NaiveDate;
        use serde::{Deserialize, Deserializer};

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<NaiveDate>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] NaiveDate);
            Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(d)| d))
        }
    }

    /// A timestamp such as `UpdatedDateUTC`.
    pub mod instant {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer};

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<DateTime<Utc>, D::Error> {
            let text = String::deserialize(deserializer)?;
            super::parse_instant(&text)
                .ok_or_else(|| serde::de::Error::custom(format!("not a Xero date: {text:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xero_dates_read_in_each_form_it_writes() {
        let at = date::parse_instant("/Date(1539993600000+0000)/").unwrap();
        assert_eq!(at.to_rfc3339(), "2018-10-20T00:00:00+00:00");
        let at = date::parse_instant("/Date(1573755038314+1300)/").unwrap();
        assert_eq!(at.timestamp_millis(), 1_573_755_038_314);
        assert_eq!(
            date::parse_instant("/Date(1539993600000)/"),
            date::parse_instant("2018-10-20")
        );
        assert_eq!(
            date::parse_instant("2018-10-20T00:00:00"),
            date::parse_instant("2018-10-20T00:00:00Z")
        );
        assert_eq!(date::parse_instant("yesterday"), None);
    }

    #[test]
    fn amounts_go_out_as_numbers_and_come_back_exact() {
        let line = LineItem {
            line_item_id: None,
            description: "Deposit".into(),
            quantity: Decimal::new(3, 0),
            unit_amount: Decimal::new(123_456_789_012, 2),
            line_amount: Some(Decimal::new(370_370_367_036, 2)),
            tax_amount: Some(Decimal::new(1, 1)),
            account_code: None,
            tax_type: None,
        };
        let json = serde_json::to_string(&line).unwrap();
        assert_eq!(
            json,
            r#"{"Description":"Deposit","Quantity":3.0,"UnitAmount":1234567890.12,"LineAmount":3703703670.36,"TaxAmount":0.1}"#
        );
        let back: LineItem = serde_json::from_str(&json).unwrap();
        assert_eq!(back, line);
        let from_strings: LineItem = serde_json::from_str(
            r#"{"Description":"x","Quantity":"2","UnitAmount":"0.30","LineAmount":null}"#,
        )
        .unwrap();
        assert_eq!(from_strings.unit_amount, Decimal::new(30, 2));
        assert_eq!(from_strings.line_amount, None);
    }
}
