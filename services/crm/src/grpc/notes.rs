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

use fusion_db::filter::{FieldKind, FieldSpec};
use fusion_db::list::{ListParams, ListSpec};
use fusion_db::resource::{Table, Val, Values};
use fusion_db::{db_status, idempotency};
use fusion_proto::crm::v1 as pb;
use fusion_proto::crm::v1::note_service_server::NoteService;
use fusion_service::api::{opt_ts, populated, total, ts};

use super::{
    API, REQUEST_IDS, caller, list_page, purge_ts, require_subject, subject_scope, values_of,
};
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

/// What CreateNote sets besides [`MUTABLE`].
const CREATE_ONLY: &[&str] = &["notable_type", "notable_id"];

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

impl NoteRow {
    pub(crate) fn into_pb(self, state: &AppState) -> pb::Note {
        pb::Note {
            id: self.id,
            tenant_id: self.tenant_id,
            notable_type: self.notable_type,
            notable_id: self.notable_id,
            user_id: self.user_id,
            title: self.title.unwrap_or_default(),
            content: self.content,
            pinned: self.pinned,
            create_time: Some(ts(self.created_at)),
            update_time: Some(ts(self.updated_at)),
            delete_time: opt_ts(self.deleted_at),
            purge_time: purge_ts(state, self.deleted_at),
            etag: fusion_service::api::etag(self.version),
        }
    }
}

/// The column values of the fields in `fields`, validated field by field; whether the
/// record exists is checked in the transaction.
fn values(n: &pb::Note, fields: &[&str]) -> Result<Values, Status> {
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
        let request_id = idempotency::request_key(DOMAIN, &body.request_id, &body)?;
        let n = body.note.unwrap_or_default();
        let fields: Vec<&str> = CREATE_ONLY.iter().chain(MUTABLE).copied().collect();
        let mut values = values(&n, &fields)?;
        values.push(("user_id", Val::Int(Some(ctx.user_id))));
        const METHOD: &str = "CreateNote";
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        if let Some(saved) = REQUEST_IDS.replay(&mut tx, METHOD, request_id).await? {
            return Ok(Response::new(saved));
        }
        let kind = n.notable_type.trim();
        require_subject(&self.state, &mut tx, "note.notable", kind, n.notable_id).await?;
        let id = TABLE.insert(&mut tx, values).await?;
        touch_last_contacted(&mut tx, kind, n.notable_id).await?;
        let created = TABLE
            .fetch::<NoteRow>(&mut tx, id, false, false)
            .await?
            .into_pb(&self.state);
        REQUEST_IDS
            .remember(&mut tx, METHOD, request_id, &created)
            .await?;
        tx.commit().await?;
        Ok(Response::new(created))
    }

    async fn get_note(
        &self,
        req: Request<pb::GetNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        let ctx = caller(&req)?;
        let row: NoteRow = TABLE
            .get(&self.state.db, ctx.tenant_id, req.into_inner().id)
            .await?;
        Ok(Response::new(row.into_pb(&self.state)))
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
        let page =
            list_page::<NoteRow>(&self.state, ctx.tenant_id, &LIST, &params, Some(&scope)).await?;
        Ok(Response::new(pb::ListNotesResponse {
            notes: page
                .items
                .into_iter()
                .map(|n| n.into_pb(&self.state))
                .collect(),
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
        let n = body.note.unwrap_or_default();
        API.require_id("note.id", n.id)?;
        let mask = API.mask(
            body.update_mask,
            MUTABLE,
            FIXED,
            &populated(&[
                ("title", !n.title.is_empty()),
                ("content", !n.content.is_empty()),
                ("pinned", n.pinned),
            ]),
        )?;
        let changing: Vec<&str> = MUTABLE.iter().copied().filter(|f| mask.has(f)).collect();
        let values = values(&n, &changing)?;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let current: NoteRow = TABLE.fetch(&mut tx, n.id, false, true).await?;
        API.check_etag(&n.etag, current.version)?;
        TABLE.update(&mut tx, n.id, values).await?;
        let row: NoteRow = TABLE.fetch(&mut tx, n.id, false, false).await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn delete_note(
        &self,
        req: Request<pb::DeleteNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        let ctx = caller(&req)?;
        let r = req.into_inner();
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let row: NoteRow = TABLE
            .set_deleted(&mut tx, r.id, &r.etag, true, |_| Ok(()))
            .await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }

    async fn undelete_note(
        &self,
        req: Request<pb::UndeleteNoteRequest>,
    ) -> Result<Response<pb::Note>, Status> {
        let ctx = caller(&req)?;
        let id = req.into_inner().id;
        let mut tx = self.state.db.begin(ctx.tenant_id).await?;
        let row: NoteRow = TABLE
            .set_deleted(&mut tx, id, "", false, |_| Ok(()))
            .await?;
        tx.commit().await?;
        Ok(Response::new(row.into_pb(&self.state)))
    }
}
