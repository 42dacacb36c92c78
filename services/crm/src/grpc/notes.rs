//! `fusion.crm.v1.NoteService`: dated, authored text on a lead, contact, deal, project,
//! stage or lot.
//!
//! The record a note is on must be live in the caller's tenant when the note is created
//! (see [`require_subject`]) and never changes afterwards; the caller is the author.
//! Adding a note to a lead or contact is contact with them, so it moves their
//! `last_contacted_at` forward in the same transaction. Lists put pinned notes first,
//! newest first.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tonic::{Request, Response, Status};

use fusion_db::db_status;
use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::{ListParams, ListSpec};
use fusion_db::resource::{Table, Val, Values};
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::note_service_server::NoteService;
use fusion_service::api::{etag, opt_ts, populated, total, ts};

use fusion_db::TenantTx;
use fusion_service::standard::{self, Call, Change, Kit, Method, Resource};

use super::{caller, require_subject, subject_scope, values_of};
use crate::domain::validate;
use crate::refs::SUBJECTS;
use crate::{AppState, DOMAIN};

pub(crate) const TABLE: Table = Table {
    domain: DOMAIN,
    name: "crm.notes",
    select: "id, tenant_id, notable_type, notable_id, user_id, title, content, pinned, \
             version, created_at, updated_at, deleted_at",
    what: "note",
};

const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("notable_type", "notable_type", FieldKind::Text),
    FieldSpec::new("notable_id", "notable_id", FieldKind::Int),
    FieldSpec::new("user_id", "user_id", FieldKind::Int),
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
const MUTABLE: &[&str] = &["title", "content", "pinned"];

/// What an update mask may not name.
const FIXED: &[&str] = &["notable_type", "notable_id", "user_id"];

/// The subjects whose `last_contacted_at` a new note moves forward.
const CONTACTED: &[(&str, &str)] = &[("lead", "crm.leads"), ("contact", "crm.contacts")];

#[derive(sqlx::FromRow)]
pub(crate) struct NoteRow {
    pub id: i64,
    pub tenant_id: i64,
    pub notable_type: String,
    pub notable_id: i64,
    pub user_id: i64,
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
struct Notes;

impl Resource for Notes {
    type Row = NoteRow;
    type Pb = pb::Note;
    type State = AppState;

    const SINGULAR: &'static str = "Note";
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
            user_id: r.user_id,
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
    fn values(_: &AppState, n: &pb::Note, fields: &[&str], _: Method) -> Result<Values, Status> {
        let kind = n.notable_type.trim();
        values_of("note", fields, |field| {
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
        })
    }

    async fn on_create(
        call: &Call<'_, AppState>,
        tx: &mut TenantTx,
        n: &pb::Note,
        values: &mut Values,
    ) -> Result<(), Status> {
        values.push(("user_id", Val::Int(Some(call.caller.user_id))));
        let kind = n.notable_type.trim();
        require_subject(call.state, tx, "note.notable", kind, n.notable_id).await
    }

    async fn after_write(
        _: &Call<'_, AppState>,
        tx: &mut TenantTx,
        change: Change<'_, NoteRow>,
        n: &NoteRow,
    ) -> Result<(), Status> {
        match change {
            Change::Created => touch_last_contacted(tx, &n.notable_type, n.notable_id).await,
            _ => Ok(()),
        }
    }
}

/// Moves the `last_contacted_at` of the lead or contact a note was just added to
/// forward to now (never back: it may have been set a little ahead), bumping its etag
/// when it changes. Other kinds of record keep no such time.
async fn touch_last_contacted(conn: &mut PgConnection, kind: &str, id: i64) -> Result<(), Status> {
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
        .await
        .map_err(|e| db_status(DOMAIN, e))?;
    Ok(())
}

/// The NoteService implementation.
#[derive(Clone, Debug)]
pub(crate) struct NoteApi {
    state: AppState,
}

impl NoteApi {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl NoteService for NoteApi {
    async fn create_note(
        &self,
        req: Request<pb::CreateNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let key = self.state.kit.request_key(&body.request_id, &body)?;
        let note = body.note.unwrap_or_default();
        let created = standard::create::<Notes>(&self.state, &ctx, key, note);
        Ok(Response::new(created.await?))
    }

    async fn get_note(
        &self,
        req: Request<pb::GetNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let note = standard::get::<Notes>(&self.state, &ctx, id);
        Ok(Response::new(note.await?))
    }

    async fn list_notes(
        &self,
        req: Request<pb::ListNotesRequest>,
    ) -> Result<Response<pb::ListNotesResponse>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let scope = subject_scope("notable_type", "notable_id", &r.notable_type, r.notable_id)?;
        let params = ListParams::new(
            r.page_size,
            r.page_token,
            r.filter,
            r.order_by,
            r.show_deleted,
        );
        let page = standard::list::<Notes>(&self.state, &ctx, &params, Some(&scope)).await?;
        Ok(Response::new(pb::ListNotesResponse {
            notes: page.items,
            next_page_token: page.next_page_token,
            total_size: total(page.total_size),
        }))
    }

    async fn update_note(
        &self,
        req: Request<pb::UpdateNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        let ctx = caller(&req)?;
        let body = req.into_inner();
        let note = body.note.unwrap_or_default();
        let updated = standard::update::<Notes>(&self.state, &ctx, note, body.update_mask);
        Ok(Response::new(updated.await?))
    }

    async fn delete_note(
        &self,
        req: Request<pb::DeleteNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let deleted = standard::delete::<Notes>(&self.state, &ctx, r.id, &r.etag);
        Ok(Response::new(deleted.await?))
    }

    async fn undelete_note(
        &self,
        req: Request<pb::UndeleteNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let restored = standard::undelete::<Notes>(&self.state, &ctx, id);
        Ok(Response::new(restored.await?))
    }
}
