//! The standard methods (AIP-133 Create, 131 Get, 132 List, 134 Update, 164 Delete and
//! Undelete), written once for every resource of every context.
//!
//! A resource describes itself once by implementing [`Resource`]: where its rows live
//! and how one becomes its proto message, which fields a filter, an order, a Create and
//! an Update may name, how its fields are validated, the parent it lives under, the
//! children that block its deletion, and hooks that run inside the same transaction
//! (lock something else, refuse a state, refresh derived figures, write an event).
//! The functions here are the whole flow of each standard method: a gRPC handler
//! parses its request, calls one of them and wraps the result, so the flow of a
//! Create or a Delete exists once, however many resources there are.
//!
//! Custom methods (`ReserveLot`, `WinDeal`, ...) stay hand-written and use the same
//! pieces: [`Kit`] and `fusion_db::resource`.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prost_types::{FieldMask, Timestamp};
use sqlx::FromRow;
use sqlx::postgres::PgRow;
use tonic::Status;

use fusion_db::idempotency::{RequestIds, RequestKey};
use fusion_db::list::{ListParams, ListSpec, Page, Scope};
use fusion_db::page::PageTokenCodec;
use fusion_db::resource::{
    Read, SoftDelete, Table, Values, Versioned, check_etag, lock_live, require_id,
};
use fusion_db::{Db, Error, TenantTx};
use fusion_tenancy::TenantContext;

use crate::api::Api;

/// What every resource of one context shares: the pool, the page-token codec, the
/// error domain, the request-id table, and how long soft-deleted rows are kept.
#[derive(Clone, Debug)]
pub struct Kit {
    /// The application-role pool.
    pub db: Db,
    /// Signs and checks List page tokens.
    pub pages: PageTokenCodec,
    /// Errors and checks in the context's domain.
    pub api: Api,
    /// The context's AIP-155 request ids.
    pub request_ids: RequestIds,
    /// How long a soft-deleted row is kept before the purge job removes it; the same
    /// setting the purge job reads, so `purge_time` tells the truth.
    pub retention: Duration,
}

impl Kit {
    /// The AIP-164 `purge_time` of a row deleted at `deleted_at`, for a resource the
    /// context's purge job removes. (Resources that are never purged report none.)
    pub fn purge_time(&self, deleted_at: Option<DateTime<Utc>>) -> Option<Timestamp> {
        crate::api::purge_ts(deleted_at, self.retention)
    }

    /// The request key of `request` carrying the raw `request_id` (see
    /// [`fusion_db::idempotency::request_key`]).
    pub fn request_key<M: prost::Message>(
        &self,
        raw: &str,
        request: &M,
    ) -> Result<Option<RequestKey>, Status> {
        Ok(fusion_db::idempotency::request_key(
            self.api.domain(),
            raw,
            request,
        )?)
    }
}

/// The parent a resource lives under (a stage's project): it must be live while a
/// child is created (key-share locked until commit, so it cannot be deleted meanwhile)
/// or undeleted, and a child never moves to another parent.
#[derive(Clone, Copy, Debug)]
pub struct Parent {
    /// The parent's table (a trusted constant).
    pub table: &'static str,
    /// The child's field naming the parent (`project_id`), in the proto and the row.
    pub field: &'static str,
    /// The parent's name in messages (`project`).
    pub what: &'static str,
    /// The reason an undelete under a deleted parent is refused (`PROJECT_DELETED`).
    pub deleted_reason: &'static str,
}

/// Live rows of another table that point at a resource and so block its deletion.
#[derive(Clone, Copy, Debug)]
pub struct Child {
    /// The child table (a trusted constant).
    pub table: &'static str,
    /// Its column pointing at the resource.
    pub column: &'static str,
    /// The children's name in messages (`lots`).
    pub what: &'static str,
}

/// Which standard method is validating a resource's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Create: every field in `Resource::CREATE`.
    Create,
    /// Update: the fields the mask names.
    Update,
}

/// A standard method in progress: the context's state and the verified caller, for
/// hooks that check references as the caller or record who acted.
#[derive(Debug)]
pub struct Call<'a, S> {
    /// What the context's handlers share.
    pub state: &'a S,
    /// The verified caller (tenant, user, permissions).
    pub caller: &'a TenantContext,
    /// The fields the method writes: Create's `CREATE`, Update's masked ones (empty
    /// for Delete and Undelete); for a hook that acts on a field that is not a column
    /// (links to other rows).
    pub fields: &'a [&'a str],
}

/// Which standard method is about to lock an existing row, for
/// [`Resource::before_lock`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locking {
    /// Update (the row must be live).
    Update,
    /// Delete (the row must be live).
    Delete,
    /// Undelete (the row may be deleted).
    Undelete,
}

impl Locking {
    /// Whether the row may be soft-deleted.
    pub fn deleted_too(self) -> bool {
        self == Locking::Undelete
    }
}

/// Which standard method wrote a row, for [`Resource::after_write`].
#[derive(Debug)]
pub enum Change<'a, Row> {
    /// Create inserted it.
    Created,
    /// Update changed it; the row as it was before.
    Updated(&'a Row),
    /// Delete soft-deleted it.
    Deleted,
    /// Undelete restored it.
    Undeleted,
}

/// One resource, described once; the standard methods are generic over it.
///
/// Every hook has a default that does nothing, so a plain resource implements only the
/// required items. Hooks run inside the method's tenant-bound transaction, after the
/// row (and its parent) are locked and before the write — except `before_lock`, which
/// runs before the row is locked, and `after_insert` and `after_write`, which run after
/// the write.
pub trait Resource: Sized + Send + Sync + 'static {
    /// The row as read with `TABLE.select`.
    type Row: for<'r> FromRow<'r, PgRow> + Versioned + Send + Unpin;
    /// The proto message.
    type Pb: prost::Message + Default + Send + Sync;
    /// What the context's handlers share (its `AppState`).
    type State: Send + Sync;
    /// The context's error catalogue: what hooks and validation return, and what the
    /// standard methods return; it becomes a `Status` once, in the gRPC handler.
    type Error: From<fusion_db::Error> + Into<Status> + Send;

    /// The resource's name in method names (`Developer` → `CreateDeveloper`).
    const SINGULAR: &'static str;
    /// The resource's field in its Create and Update requests (`lead_status`): field
    /// violations name `<FIELD>.<field>`.
    const FIELD: &'static str;
    /// Where rows live and how they are read.
    const TABLE: Table;
    /// What List reads, filters and orders on.
    const LIST: ListSpec;
    /// The fields Create sets (the mutable ones plus any set only at creation).
    const CREATE: &'static [&'static str];
    /// The fields Update may change.
    const MUTABLE: &'static [&'static str];
    /// Fields that exist but never change after creation (named in a mask: refused).
    const IMMUTABLE: &'static [&'static str] = &[];
    /// The parent the resource lives under, if any.
    const PARENT: Option<Parent> = None;
    /// Children whose live rows block deletion.
    const CHILDREN: &'static [Child] = &[];

    /// The context's kit.
    fn kit(state: &Self::State) -> &Kit;
    /// The proto message of a row.
    fn to_pb(state: &Self::State, row: Self::Row) -> Self::Pb;
    /// The id a request's message names.
    fn id(pb: &Self::Pb) -> i64;
    /// The etag a request's message carries.
    fn etag(pb: &Self::Pb) -> &str;
    /// The fields a request set to non-default values (what an Update without a mask
    /// changes).
    fn populated(pb: &Self::Pb) -> Vec<&'static str>;
    /// The validated column values of `fields` of `pb`, for `method`.
    fn values(
        state: &Self::State,
        pb: &Self::Pb,
        fields: &[&str],
        method: Method,
    ) -> Result<Values, Self::Error>;

    /// The parent id a request's message names (0 when none is sent).
    fn sent_parent_id(_pb: &Self::Pb) -> i64 {
        0
    }
    /// The parent id of a row.
    fn parent_id(_row: &Self::Row) -> i64 {
        0
    }

    /// Right after an Update, Delete or Undelete opens its transaction, before row `id`
    /// is read and locked: take the locks that must come before the row's (a lot's
    /// project), so every writer takes them in the same order.
    fn before_lock(
        _call: &Call<'_, Self::State>,
        _tx: &mut TenantTx,
        _id: i64,
        _locking: Locking,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }
    /// Before a Create inserts (parent locked); may add column values.
    fn on_create(
        _call: &Call<'_, Self::State>,
        _tx: &mut TenantTx,
        _pb: &Self::Pb,
        _values: &mut Values,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }
    /// Right after a Create inserts row `id`, before it is read back: write what hangs
    /// off the new row (links to other rows) so the row read and returned shows it.
    fn after_insert(
        _call: &Call<'_, Self::State>,
        _tx: &mut TenantTx,
        _id: i64,
        _pb: &Self::Pb,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }
    /// Before an Update writes `fields` (the row locked as `current`); may add values.
    fn on_update(
        _call: &Call<'_, Self::State>,
        _tx: &mut TenantTx,
        _current: &Self::Row,
        _pb: &Self::Pb,
        _values: &mut Values,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }
    /// Before a Delete (the row locked, children checked); may refuse.
    fn on_delete(
        _call: &Call<'_, Self::State>,
        _tx: &mut TenantTx,
        _current: &Self::Row,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }
    /// Before an Undelete (the row locked, parent checked); may refuse.
    fn on_undelete(
        _call: &Call<'_, Self::State>,
        _tx: &mut TenantTx,
        _current: &Self::Row,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }
    /// After any write, in the same transaction, with the row as it now is: refresh
    /// derived figures, record an event.
    fn after_write(
        _call: &Call<'_, Self::State>,
        _tx: &mut TenantTx,
        _change: Change<'_, Self::Row>,
        _row: &Self::Row,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async { Ok(()) }
    }
}

/// Reads row `id` of `R` as `how` says.
async fn read<R: Resource>(tx: &mut TenantTx, id: i64, how: Read) -> Result<R::Row, R::Error> {
    Ok(R::TABLE.fetch(tx, id, how).await?)
}

/// Create (AIP-133, with AIP-155 request ids): validates the fields, replays an earlier
/// call with the same request id, locks the parent, inserts, and returns the row.
pub async fn create<R: Resource>(
    state: &R::State,
    caller: &TenantContext,
    key: Option<RequestKey>,
    pb: R::Pb,
) -> Result<R::Pb, R::Error> {
    let kit = R::kit(state);
    let call = Call {
        state,
        caller,
        fields: R::CREATE,
    };
    let mut values = R::values(state, &pb, R::CREATE, Method::Create)?;
    let method = format!("Create{}", R::SINGULAR);
    let mut tx = kit.db.begin(caller.tenant_id).await?;
    if let Some(saved) = kit.request_ids.replay(&mut tx, &method, key).await? {
        return Ok(saved);
    }
    if let Some(parent) = R::PARENT {
        let parent_id = R::sent_parent_id(&pb);
        if !lock_live(&mut tx, kit.api.domain(), parent.table, parent_id).await? {
            return Err(Error::not_found(kit.api.domain(), parent.what, parent_id).into());
        }
    }
    R::on_create(&call, &mut tx, &pb, &mut values).await?;
    // A platform table (a plan catalogue) has no tenant column to fill.
    let id = if R::LIST.tenant_scoped {
        R::TABLE.insert(&mut tx, values).await?
    } else {
        R::TABLE.insert_platform(&mut tx, values).await?
    };
    R::after_insert(&call, &mut tx, id, &pb).await?;
    let row = read::<R>(&mut tx, id, Read::live()).await?;
    R::after_write(&call, &mut tx, Change::Created, &row).await?;
    let created = R::to_pb(state, row);
    kit.request_ids
        .remember(&mut tx, &method, key, &created)
        .await?;
    tx.commit().await?;
    Ok(created)
}

/// Get (AIP-131): row `id` of the caller's tenant, soft-deleted or not (AIP-164: a
/// deleted resource comes back with `delete_time` and `purge_time`; Update, Delete and
/// custom methods treat it as absent).
pub async fn get<R: Resource>(
    state: &R::State,
    caller: &TenantContext,
    id: i64,
) -> Result<R::Pb, R::Error> {
    let row = R::TABLE
        .get(
            &R::kit(state).db,
            caller.tenant_id,
            id,
            Read::live_or_deleted(),
        )
        .await?;
    Ok(R::to_pb(state, row))
}

/// List (AIP-132/158/160): one page of the caller's tenant, within `scope`.
pub async fn list<R: Resource>(
    state: &R::State,
    caller: &TenantContext,
    params: &ListParams,
    scope: Option<Scope<'_>>,
) -> Result<Page<R::Pb>, R::Error> {
    let kit = R::kit(state);
    let page = fusion_db::list::tenant_page::<R::Row>(
        &kit.db,
        kit.api.domain(),
        &R::LIST,
        params,
        &kit.pages,
        caller.tenant_id,
        scope,
    )
    .await?;
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(|row| R::to_pb(state, row))
            .collect(),
        next_page_token: page.next_page_token,
        total_size: page.total_size,
    })
}

/// Update (AIP-134, etags per AIP-154): changes the masked fields (or, without a mask,
/// the populated ones) of the live row the message names.
pub async fn update<R: Resource>(
    state: &R::State,
    caller: &TenantContext,
    pb: R::Pb,
    mask: Option<FieldMask>,
) -> Result<R::Pb, R::Error> {
    let kit = R::kit(state);
    let field = R::FIELD;
    let id = R::id(&pb);
    require_id(kit.api.domain(), &format!("{field}.id"), id)?;
    let mask = kit
        .api
        .mask(mask, R::MUTABLE, R::IMMUTABLE, &R::populated(&pb))?;
    let changing: Vec<&str> = R::MUTABLE.iter().copied().filter(|f| mask.has(f)).collect();
    let mut values = R::values(state, &pb, &changing, Method::Update)?;
    let call = Call {
        state,
        caller,
        fields: &changing,
    };
    let mut tx = kit.db.begin(caller.tenant_id).await?;
    R::before_lock(&call, &mut tx, id, Locking::Update).await?;
    let current = read::<R>(&mut tx, id, Read::live().for_update()).await?;
    check_etag(kit.api.domain(), R::etag(&pb), current.version())?;
    // The mask already refuses the parent; a whole resource sent back may carry it only
    // unchanged (AIP-203 IMMUTABLE).
    if let Some(parent) = R::PARENT {
        let sent = R::sent_parent_id(&pb);
        if sent != 0 && sent != R::parent_id(&current) {
            let path = format!("{field}.{}", parent.field);
            return Err(Error::invalid(kit.api.domain(), &path, "cannot be changed").into());
        }
    }
    R::on_update(&call, &mut tx, &current, &pb, &mut values).await?;
    R::TABLE.update(&mut tx, id, values).await?;
    let row = read::<R>(&mut tx, id, Read::live()).await?;
    R::after_write(&call, &mut tx, Change::Updated(&current), &row).await?;
    tx.commit().await?;
    Ok(R::to_pb(state, row))
}

/// Delete (AIP-164 soft delete, etag checked): refused while live children point at the
/// row; returns the row with its delete and purge times.
pub async fn delete<R: Resource>(
    state: &R::State,
    caller: &TenantContext,
    id: i64,
    etag: &str,
) -> Result<R::Pb, R::Error> {
    let kit = R::kit(state);
    let call = Call {
        state,
        caller,
        fields: &[],
    };
    require_id(kit.api.domain(), "id", id)?;
    let mut tx = kit.db.begin(caller.tenant_id).await?;
    R::before_lock(&call, &mut tx, id, Locking::Delete).await?;
    // Lock first, so a child created at the same moment is either seen here or finds
    // this row gone.
    let current = read::<R>(&mut tx, id, Read::live().for_update()).await?;
    // A stale etag is ABORTED before any refusal about the row as it is now.
    check_etag(kit.api.domain(), etag, current.version())?;
    for child in R::CHILDREN {
        R::TABLE
            .refuse_live_children(&mut tx, id, child.table, child.column, child.what)
            .await?;
    }
    R::on_delete(&call, &mut tx, &current).await?;
    let row: R::Row = R::TABLE
        .set_deleted(&mut tx, id, SoftDelete::Delete { etag })
        .await?;
    R::after_write(&call, &mut tx, Change::Deleted, &row).await?;
    tx.commit().await?;
    Ok(R::to_pb(state, row))
}

/// Undelete (AIP-164): restores a soft-deleted row whose parent is live; a live row is
/// ALREADY_EXISTS.
pub async fn undelete<R: Resource>(
    state: &R::State,
    caller: &TenantContext,
    id: i64,
) -> Result<R::Pb, R::Error> {
    let kit = R::kit(state);
    let call = Call {
        state,
        caller,
        fields: &[],
    };
    require_id(kit.api.domain(), "id", id)?;
    let mut tx = kit.db.begin(caller.tenant_id).await?;
    R::before_lock(&call, &mut tx, id, Locking::Undelete).await?;
    let current = read::<R>(&mut tx, id, Read::live_or_deleted().for_update()).await?;
    if current.deleted() {
        if let Some(parent) = R::PARENT {
            let parent_id = R::parent_id(&current);
            if !lock_live(&mut tx, kit.api.domain(), parent.table, parent_id).await? {
                let message = format!("{} {parent_id} is deleted; undelete it first", parent.what);
                return Err(
                    Error::precondition(kit.api.domain(), parent.deleted_reason, message).into(),
                );
            }
        }
        R::on_undelete(&call, &mut tx, &current).await?;
    }
    let row: R::Row = R::TABLE
        .set_deleted(&mut tx, id, SoftDelete::Undelete)
        .await?;
    R::after_write(&call, &mut tx, Change::Undeleted, &row).await?;
    tx.commit().await?;
    Ok(R::to_pb(state, row))
}
