//! The gRPC surface of property: one module per service, the method policy, and the
//! flows every resource shares (get, soft delete, undelete, idempotent create). Proto
//! types stop here.

mod developers;
mod features;
mod lifecycle;
mod lots;
mod media;
mod projects;
mod stages;

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection};
use tonic::service::Routes;
use tonic::{Request, Status};

use fusion_db::{TenantTx, db_status, idempotency};
use fusion_proto::property::v1::{
    developer_service_server::DeveloperServiceServer, feature_service_server::FeatureServiceServer,
    lot_service_server::LotServiceServer, media_service_server::MediaServiceServer,
    project_service_server::ProjectServiceServer, stage_service_server::StageServiceServer,
};
use fusion_service::api::Api;
use fusion_tenancy::{MethodPolicy, TenantContext};

use crate::{AppState, DOMAIN};

pub(crate) use lifecycle::release_if_lapsed;
pub(crate) use lots::LotRow;
pub(crate) use media::refuse_live_media;

/// Where lots live, for the housekeeping job.
pub(crate) fn lot_table() -> Table {
    lots::TABLE
}

/// Errors and checks in this context's domain.
pub(crate) const API: Api = Api::new(DOMAIN);

const IDEMPOTENCY_TABLE: &str = "property.idempotency_keys";

/// Fully-qualified names of the services property serves (for health checks).
pub const SERVICE_NAMES: &[&str] = &[
    "fusion.property.v1.DeveloperService",
    "fusion.property.v1.ProjectService",
    "fusion.property.v1.StageService",
    "fusion.property.v1.LotService",
    "fusion.property.v1.FeatureService",
    "fusion.property.v1.MediaService",
];

/// Every property service, ready to serve.
pub fn routes(state: &AppState) -> Routes {
    Routes::new(DeveloperServiceServer::new(developers::DeveloperApi::new(
        state.clone(),
    )))
    .add_service(ProjectServiceServer::new(projects::ProjectApi::new(
        state.clone(),
    )))
    .add_service(StageServiceServer::new(stages::StageApi::new(
        state.clone(),
    )))
    .add_service(LotServiceServer::new(lots::LotApi::new(state.clone())))
    .add_service(FeatureServiceServer::new(features::FeatureApi::new(
        state.clone(),
    )))
    .add_service(MediaServiceServer::new(media::MediaApi::new(state.clone())))
}

/// The permission every property RPC needs; the one place to read it. Reads need
/// `property.<resource>.read`; every other method (including the lot lifecycle) needs
/// `property.<resource>.write`.
pub fn policy() -> MethodPolicy {
    const STANDARD_READS: &[&str] = &["Get", "List"];
    let services: &[(&str, &str, &str, &[&str])] = &[
        ("DeveloperService", "developers", "Developer", &[]),
        ("ProjectService", "projects", "Project", &[]),
        ("StageService", "stages", "Stage", &[]),
        ("FeatureService", "features", "Feature", &[]),
        (
            "LotService",
            "lots",
            "Lot",
            &[
                "HoldLot",
                "ReleaseLot",
                "ReserveLot",
                "ExchangeLot",
                "MarkUnconditional",
                "SettleLot",
                "WithdrawLot",
                "RevertLot",
                "SetLotPrice",
            ],
        ),
        ("MediaService", "media", "Media", &["UploadMedia"]),
    ];
    let mut policy = MethodPolicy::new();
    for (service, resource, singular, custom_writes) in services {
        let path = |m: &str| format!("/fusion.property.v1.{service}/{m}");
        let read = format!("property.{resource}.read");
        let write = format!("property.{resource}.write");
        for verb in STANDARD_READS {
            let method = match (*verb, *singular) {
                ("List", "Media") => "ListMedia".to_owned(),
                ("List", s) => format!("List{s}s"),
                (v, s) => format!("{v}{s}"),
            };
            policy = policy.require(&path(&method), &read);
        }
        for verb in ["Update", "Delete", "Undelete"] {
            policy = policy.require(&path(&format!("{verb}{singular}")), &write);
        }
        if *singular != "Media" {
            policy = policy.require(&path(&format!("Create{singular}")), &write);
        }
        for method in *custom_writes {
            policy = policy.require(&path(method), &write);
        }
    }
    let lots = |m: &str| format!("/fusion.property.v1.LotService/{m}");
    for method in [
        "ListLotStatusChanges",
        "ListLotPrices",
        "WatchLotAvailability",
    ] {
        policy = policy.require(&lots(method), "property.lots.read");
    }
    policy.require(
        "/fusion.property.v1.MediaService/DownloadMedia",
        "property.media.read",
    )
}

/// The verified caller.
pub(crate) fn caller<T>(req: &Request<T>) -> Result<TenantContext, Status> {
    TenantContext::from_request(req)
}

/// Where a resource's rows live and how they are read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Table {
    /// Schema-qualified table.
    pub name: &'static str,
    /// The select list its row type reads.
    pub select: &'static str,
    /// The resource's name in messages (`developer`).
    pub what: &'static str,
}

/// A row that carries a version (etag) and a soft-delete time.
pub(crate) trait Versioned {
    fn version(&self) -> i64;
    fn deleted(&self) -> bool;
}

/// Implements [`Versioned`] for row types with `version` and `deleted_at` fields.
macro_rules! versioned {
    ($($row:ty),+ $(,)?) => {$(
        impl $crate::grpc::Versioned for $row {
            fn version(&self) -> i64 {
                self.version
            }
            fn deleted(&self) -> bool {
                self.deleted_at.is_some()
            }
        }
    )+};
}
pub(crate) use versioned;

impl Table {
    /// Reads row `id` (NOT_FOUND when missing, another tenant's, or deleted unless
    /// `include_deleted`), optionally locking it for the rest of the transaction.
    pub(crate) async fn fetch<T>(
        &self,
        conn: &mut PgConnection,
        id: i64,
        include_deleted: bool,
        lock: bool,
    ) -> Result<T, Status>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let sql = format!(
            "SELECT {} FROM {} WHERE id = $1{}{}",
            self.select,
            self.name,
            if include_deleted {
                ""
            } else {
                " AND deleted_at IS NULL"
            },
            if lock { " FOR UPDATE" } else { "" },
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(|e| db_status(DOMAIN, e))?
            .ok_or_else(|| API.not_found(self.what, id))
    }

    /// Soft-deletes (AIP-164) or restores row `id` after `guard` approves the row as it
    /// is, and returns it as it is afterwards. Deleting a deleted row is NOT_FOUND;
    /// undeleting a live one is ALREADY_EXISTS.
    pub(crate) async fn set_deleted<T>(
        &self,
        tx: &mut TenantTx,
        id: i64,
        etag: &str,
        delete: bool,
        guard: impl FnOnce(&T) -> Result<(), Status>,
    ) -> Result<T, Status>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin + Versioned,
    {
        API.require_id("id", id)?;
        let row: T = self.fetch(tx, id, !delete, true).await?;
        if !delete && !row.deleted() {
            return Err(fusion_proto::errors::already_exists(
                DOMAIN,
                "NOT_DELETED",
                format!("{} {id} is not deleted", self.what),
            ));
        }
        API.check_etag(etag, row.version())?;
        guard(&row)?;
        fusion_db::soft_delete::set_deleted(tx, DOMAIN, self.name, id, delete).await?;
        self.fetch(tx, id, true, false).await
    }

    /// Refuses to delete a row while live rows of `child` (a trusted table) point at it
    /// through `column`.
    pub(crate) async fn refuse_live_children(
        &self,
        conn: &mut PgConnection,
        id: i64,
        child: &'static str,
        column: &'static str,
        children: &str,
    ) -> Result<(), Status> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {child} WHERE {column} = $1 AND deleted_at IS NULL)"
        );
        let has: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(conn)
            .await
            .map_err(|e| db_status(DOMAIN, e))?;
        if has {
            Err(API.precondition(
                "HAS_CHILDREN",
                format!("{} {id} still has {children}; delete them first", self.what),
            ))
        } else {
            Ok(())
        }
    }
}

/// The saved response of an earlier call with this request id (AIP-155), decoded.
pub(crate) async fn replay<M: prost::Message + Default>(
    tx: &mut TenantTx,
    method: &str,
    request_id: Option<uuid::Uuid>,
) -> Result<Option<M>, Status> {
    let tenant = tx.tenant_id();
    idempotency::replay(tx, DOMAIN, IDEMPOTENCY_TABLE, tenant, method, request_id).await
}

/// Records the response of the first call with this request id, in the same transaction.
pub(crate) async fn remember<M: prost::Message>(
    tx: &mut TenantTx,
    method: &str,
    request_id: Option<uuid::Uuid>,
    response: &M,
) -> Result<(), Status> {
    let tenant = tx.tenant_id();
    idempotency::remember(
        tx,
        DOMAIN,
        IDEMPOTENCY_TABLE,
        tenant,
        method,
        request_id,
        response,
    )
    .await
}

/// The AIP-164 purge time of a row deleted at `deleted_at`.
pub(crate) fn purge_ts(
    state: &AppState,
    deleted_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Option<prost_types::Timestamp> {
    fusion_service::api::purge_ts(deleted_at, state.config.purge_retention)
}

/// A column value on its way into an INSERT or UPDATE.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    Text(Option<String>),
    Int(Option<i64>),
    Int32(Option<i32>),
    Decimal(Option<rust_decimal::Decimal>),
    Bool(bool),
    Date(Option<chrono::NaiveDate>),
}

impl Val {
    /// Trimmed text; empty is NULL.
    pub(crate) fn text(s: &str) -> Val {
        Val::Text(fusion_service::api::opt_str(s).map(str::to_owned))
    }

    fn push(self, qb: &mut sqlx::QueryBuilder<sqlx::Postgres>) {
        match self {
            Val::Text(v) => qb.push_bind(v),
            Val::Int(v) => qb.push_bind(v),
            Val::Int32(v) => qb.push_bind(v),
            Val::Decimal(v) => qb.push_bind(v),
            Val::Bool(v) => qb.push_bind(v),
            Val::Date(v) => qb.push_bind(v),
        };
    }
}

/// Columns (trusted constants) and their values.
pub(crate) type Values = Vec<(&'static str, Val)>;

/// Inserts a row of the caller's tenant into `table` and returns its id.
pub(crate) async fn insert_row(
    tx: &mut TenantTx,
    table: &'static str,
    values: Values,
) -> Result<i64, Status> {
    let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new("INSERT INTO ");
    qb.push(table).push(" (tenant_id");
    for (column, _) in &values {
        qb.push(", ").push(*column);
    }
    qb.push(") VALUES (").push_bind(tx.tenant_id());
    for (_, value) in values {
        qb.push(", ");
        value.push(&mut qb);
    }
    qb.push(") RETURNING id");
    qb.build_query_scalar()
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| db_status(DOMAIN, e))
}

/// Sets `values` on row `id` of `table`, bumping its version (etag).
pub(crate) async fn update_row(
    conn: &mut PgConnection,
    table: &'static str,
    id: i64,
    values: Values,
) -> Result<(), Status> {
    if values.is_empty() {
        return Ok(());
    }
    let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new("UPDATE ");
    qb.push(table)
        .push(" SET updated_at = now(), version = version + 1");
    for (column, value) in values {
        qb.push(", ").push(column).push(" = ");
        value.push(&mut qb);
    }
    qb.push(" WHERE id = ").push_bind(id);
    qb.build()
        .execute(conn)
        .await
        .map_err(|e| db_status(DOMAIN, e))?;
    Ok(())
}

/// Converts the fields of a resource named in `fields` into column values with
/// `convert`, collecting a field violation (`<prefix>.<field>`) for each that fails.
pub(crate) fn values_of(
    prefix: &str,
    fields: &[&str],
    mut convert: impl FnMut(&str) -> Result<Option<(&'static str, Val)>, String>,
) -> Result<Values, Status> {
    let mut values = Vec::new();
    let mut violations = Vec::new();
    for field in fields {
        match convert(field) {
            Ok(Some(value)) => values.push(value),
            Ok(None) => {}
            Err(description) => violations.push(fusion_proto::errors::FieldViolation::new(
                format!("{prefix}.{field}"),
                description,
            )),
        }
    }
    API.violations(violations)?;
    Ok(values)
}

/// Whether row `id` of `table` (a trusted constant) is live, key-share locking it for
/// the rest of the transaction. That lock conflicts with the `FOR UPDATE` a soft delete
/// takes but not with ordinary updates, so the parent cannot be deleted between this
/// check and the commit of the row that points at it.
pub(crate) async fn lock_live(
    conn: &mut PgConnection,
    table: &'static str,
    id: i64,
) -> Result<bool, Status> {
    let sql = format!("SELECT id FROM {table} WHERE id = $1 AND deleted_at IS NULL FOR KEY SHARE");
    let found: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(|e| db_status(DOMAIN, e))?;
    Ok(found.is_some())
}

impl Table {
    /// A Get: live row `id` of the caller's tenant, read in its own transaction.
    pub(crate) async fn get<T>(
        &self,
        db: &fusion_db::Db,
        tenant_id: i64,
        id: i64,
    ) -> Result<T, Status>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        API.require_id("id", id)?;
        let mut tx = db.begin(tenant_id).await?;
        let row = self.fetch(&mut tx, id, false, false).await?;
        tx.commit().await?;
        Ok(row)
    }
}

/// A List: one page of `spec` in the caller's tenant (within `scope`), read in its own
/// transaction.
pub(crate) async fn list_page<T>(
    state: &AppState,
    tenant_id: i64,
    spec: &fusion_db::list::ListSpec,
    params: &fusion_db::list::ListParams,
    scope: Option<fusion_db::list::Scope<'_>>,
) -> Result<fusion_db::list::Page<T>, Status>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let mut tx = state.db.begin(tenant_id).await?;
    let page = fusion_db::list::list::<T>(
        &mut tx,
        DOMAIN,
        spec,
        params,
        &state.pages,
        Some(tenant_id),
        scope,
    )
    .await?;
    tx.commit().await?;
    Ok(page)
}
