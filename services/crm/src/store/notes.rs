//! Notes: their row, their description for the standard methods, and the system notes
//! crm writes itself on the open deals of a lot whose status changed.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::ListSpec;
use fusion_db::resource::{Table, Val, Values};
use fusion_proto::crm::v1 as pb;
use fusion_service::api::{etag, opt_ts, populated, ts};

use fusion_db::TenantTx;
use fusion_service::standard::{Call, Change, Kit, Method, Resource};

use crate::domain::validate;
use crate::error::CrmError;
use crate::refs::SUBJECTS;
use crate::store::{require_subject, values_of};
use crate::{AppState, DOMAIN};

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "crm.notes",
    select: "id, tenant_id, notable_type, notable_id, user_id, title, content, pinned, \
             version, created_at, updated_at, deleted_at",
    what: "note",
};

pub(crate) const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("notable_type", "notable_type", FieldKind::Text),
    FieldSpec::new("notable_id", "notable_id", FieldKind::Int),
    FieldSpec::new("author_user_id", "user_id", FieldKind::Int),
    FieldSpec::new("title", "title", FieldKind::Text),
    FieldSpec::new("pinned", "pinned", FieldKind::Bool),
    FieldSpec::new("create_time", "created_at", FieldKind::Timestamp),
    FieldSpec::new("update_time", "updated_at", FieldKind::Timestamp),
];

pub(crate) const LIST: ListSpec = ListSpec {
    table: TABLE.name,
    select: TABLE.select,
    fields: FIELDS,
    order_fields: &["pinned", "create_time", "update_time", "title"],
    default_order: "pinned desc, create_time desc",
    soft_delete: true,
    tenant_scoped: true,
};

/// What UpdateNote may change.
pub(crate) const MUTABLE: &[&str] = &["title", "content", "pinned"];

/// What an update mask may not name.
pub(crate) const FIXED: &[&str] = &["notable_type", "notable_id", "author_user_id"];

/// The subjects whose `last_contacted_at` a new note moves forward.
pub(crate) const CONTACTED: &[(&str, &str)] = &[("lead", "crm.leads"), ("contact", "crm.contacts")];

#[derive(sqlx::FromRow)]
pub(crate) struct NoteRow {
    pub id: i64,
    pub tenant_id: i64,
    pub notable_type: String,
    pub notable_id: i64,
    /// The author; none on a system note written while its consumer had no service
    /// account.
    pub user_id: Option<i64>,
    pub title: Option<String>,
    pub content: String,
    pub pinned: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

fusion_db::versioned!(NoteRow);

/// Notes on the standard methods: the caller is the author, the record a note is on must
/// be live when it is created and never changes, and a new note on a lead or contact
/// moves their last contact forward.
pub(crate) struct Notes;

impl Resource for Notes {
    type Row = NoteRow;
    type Pb = pb::Note;
    type State = AppState;
    type Error = crate::error::CrmError;

    const SINGULAR: &'static str = "Note";
    const FIELD: &'static str = "note";
    const TABLE: Table = TABLE;
    const LIST: ListSpec = LIST;
    const CREATE: &'static [&'static str] =
        &["notable_type", "notable_id", "title", "content", "pinned"];
    const MUTABLE: &'static [&'static str] = MUTABLE;
    const IMMUTABLE: &'static [&'static str] = FIXED;

    fn kit(state: &AppState) -> &Kit {
        &state.kit
    }

    fn to_pb(state: &AppState, r: NoteRow) -> pb::Note {
        pb::Note {
            id: r.id,
            tenant_id: r.tenant_id,
            notable_type: r.notable_type,
            notable_id: r.notable_id,
            author_user_id: r.user_id.unwrap_or_default(),
            title: r.title.unwrap_or_default(),
            content: r.content,
            pinned: r.pinned,
            create_time: Some(ts(r.created_at)),
            update_time: Some(ts(r.updated_at)),
            delete_time: opt_ts(r.deleted_at),
            purge_time: state.kit.purge_time(r.deleted_at),
            etag: etag(r.version),
        }
    }

    fn id(n: &pb::Note) -> i64 {
        n.id
    }

    fn etag(n: &pb::Note) -> &str {
        &n.etag
    }

    fn populated(n: &pb::Note) -> Vec<&'static str> {
        populated(&[
            ("title", !n.title.is_empty()),
            ("content", !n.content.is_empty()),
            ("pinned", n.pinned),
        ])
    }

    /// Validated field by field; whether the record exists is checked in the
    /// transaction.
    fn values(
        _: &AppState,
        n: &pb::Note,
        fields: &[&str],
        _: Method,
    ) -> Result<Values, crate::error::CrmError> {
        let kind = n.notable_type.trim();
        let values = values_of("note", fields, |field| {
            Ok(Some(match field {
                "notable_type" => {
                    if kind.is_empty() {
                        return Err(format!("is required: one of {}", SUBJECTS.join(", ")));
                    }
                    validate::one_of(kind, SUBJECTS)?;
                    ("notable_type", Val::text(kind))
                }
                "notable_id" => {
                    if n.notable_id <= 0 {
                        return Err("must be a positive id".into());
                    }
                    ("notable_id", Val::Int(Some(n.notable_id)))
                }
                "title" => {
                    validate::max_len(&n.title, 255)?;
                    ("title", Val::text(&n.title))
                }
                "content" => {
                    validate::required(&n.content, 20_000)?;
                    ("content", Val::text(&n.content))
                }
                "pinned" => ("pinned", Val::Bool(n.pinned)),
                _ => return Ok(None),
            }))
        })?;
        Ok(values)
    }

    async fn on_create(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        n: &pb::Note,
        values: &mut Values,
    ) -> Result<(), crate::error::CrmError> {
        values.push(("user_id", Val::Int(Some(call.caller.user_id))));
        let kind = n.notable_type.trim();
        require_subject(
            call.state,
            call.caller,
            tx,
            "note.notable",
            kind,
            n.notable_id,
        )
        .await
    }

    async fn after_write(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        change: Change<'_, NoteRow>,
        n: &NoteRow,
    ) -> Result<(), crate::error::CrmError> {
        match change {
            Change::Created => Ok(touch_last_contacted(tx, &n.notable_type, n.notable_id).await?),
            _ => Ok(()),
        }
    }
}

/// Moves the `last_contacted_at` of the lead or contact a note was just added to
/// forward to now (never back: it may have been set a little ahead), bumping its etag
/// when it changes. Other kinds of record keep no such time.
pub(crate) async fn touch_last_contacted(
    conn: &mut PgConnection,
    kind: &str,
    id: i64,
) -> Result<(), CrmError> {
    let Some((_, table)) = CONTACTED.iter().find(|(k, _)| *k == kind) else {
        return Ok(());
    };
    let sql = format!(
        "UPDATE {table} SET last_contacted_at = now(), updated_at = now(), version = version + 1
          WHERE id = $1 AND (last_contacted_at IS NULL OR last_contacted_at < now())"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A system note for the open deals of a lot.
#[derive(Clone, Debug)]
pub(crate) struct LotNote<'a> {
    /// The lot.
    pub lot_id: i64,
    /// The deal the lot's change was made for, which gets no note; none when 0.
    pub except_deal_id: i64,
    /// The author: the consumer's service account, if it has one.
    pub author: Option<i64>,
    /// Title.
    pub title: &'a str,
    /// Text.
    pub content: &'a str,
}

/// What [`note_open_deals_of_lot`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Noted {
    /// Notes written.
    pub written: u64,
    /// Open deals of the lot left without one (beyond the cap).
    pub skipped: u64,
}

/// Writes `note` on the live open deals of the transaction's tenant whose lot is
/// `note.lot_id`, except `note.except_deal_id`: on at most `cap` of them (the most
/// recently updated first), in one statement, so a lot with thousands of open deals
/// cannot make one giant transaction; how many were left out is returned.
pub(crate) async fn note_open_deals_of_lot(
    tx: &mut TenantTx,
    note: &LotNote<'_>,
    cap: i64,
) -> Result<Noted, CrmError> {
    let tenant = tx.tenant_id();
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM crm.deals
          WHERE tenant_id = $1 AND lot_id = $2 AND status = 'open' AND deleted_at IS NULL
            AND id <> $3",
    )
    .bind(tenant)
    .bind(note.lot_id)
    .bind(note.except_deal_id)
    .fetch_one(&mut **tx)
    .await?;
    let written = sqlx::query(
        "INSERT INTO crm.notes (tenant_id, notable_type, notable_id, user_id, title, content)
         SELECT d.tenant_id, 'deal', d.id, $4, $5, $6
           FROM crm.deals d
          WHERE d.tenant_id = $1 AND d.lot_id = $2 AND d.status = 'open'
            AND d.deleted_at IS NULL AND d.id <> $3
          ORDER BY d.updated_at DESC, d.id DESC
          LIMIT $7",
    )
    .bind(tenant)
    .bind(note.lot_id)
    .bind(note.except_deal_id)
    .bind(note.author)
    .bind(note.title)
    .bind(note.content)
    .bind(cap)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(Noted {
        written,
        skipped: u64::try_from(open)
            .unwrap_or_default()
            .saturating_sub(written),
    })
}
