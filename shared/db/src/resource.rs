//! The row-level flows every resource API shares, whatever its context: read a row (or
//! NOT_FOUND), soft delete and undelete it behind an etag check, insert and update it
//! from validated column values, key-share lock a parent while a child is written, and
//! refuse to delete a parent that still has live children.
//!
//! A context describes each resource once as a [`Table`] and converts its proto fields
//! into [`Values`]; the SQL is built here, with every value bound.

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection};

use fusion_proto::errors::FieldViolation;

use crate::TenantTx;
use crate::error::{Error, Kind};

/// Where a resource's rows live and how they are read.
#[derive(Clone, Copy, Debug)]
pub struct Table {
    /// The error domain of the owning context (`property.fusion`).
    pub domain: &'static str,
    /// Schema-qualified table.
    pub name: &'static str,
    /// The select list its row type reads.
    pub select: &'static str,
    /// The resource's name in messages (`developer`).
    pub what: &'static str,
}

/// A row that carries a version (etag) and a soft-delete time.
pub trait Versioned {
    /// The row's version; its etag is derived from it.
    fn version(&self) -> i64;
    /// Whether the row is soft-deleted.
    fn deleted(&self) -> bool;
}

/// Implements [`Versioned`] for row types with `version` and `deleted_at` fields.
#[macro_export]
macro_rules! versioned {
    ($($row:ty),+ $(,)?) => {$(
        impl $crate::resource::Versioned for $row {
            fn version(&self) -> i64 {
                self.version
            }
            fn deleted(&self) -> bool {
                self.deleted_at.is_some()
            }
        }
    )+};
}

/// How a row is read: live rows only, or soft-deleted ones too; and whether it is
/// locked (`FOR UPDATE`) for the rest of the transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read {
    deleted_too: bool,
    lock: bool,
}

impl Read {
    /// A live row; a deleted one is NOT_FOUND.
    pub const fn live() -> Read {
        Read {
            deleted_too: false,
            lock: false,
        }
    }

    /// A row whether it is live or soft-deleted.
    pub const fn live_or_deleted() -> Read {
        Read {
            deleted_too: true,
            lock: false,
        }
    }

    /// The same read, locking the row until the transaction ends.
    pub const fn for_update(self) -> Read {
        Read { lock: true, ..self }
    }
}

/// What [`Table::set_deleted`] does to a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftDelete<'a> {
    /// Delete (AIP-164), behind the caller's etag (empty: unconditionally).
    Delete {
        /// The etag the caller sent.
        etag: &'a str,
    },
    /// Undelete.
    Undelete,
}

/// The etag (AIP-154) of a row at `version`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// ABORTED when the caller sent an etag that is no longer current.
pub fn check_etag(domain: &'static str, sent: &str, version: i64) -> Result<(), Error> {
    if sent.is_empty() || sent == etag(version) {
        Ok(())
    } else {
        Err(Error::new(
            domain,
            Kind::Aborted {
                reason: "ETAG_MISMATCH",
                message: "the resource changed since it was read; get it again".to_owned(),
            },
        ))
    }
}

impl Table {
    fn not_found(&self, id: i64) -> Error {
        Error::not_found(self.domain, self.what, id)
    }

    /// Reads row `id` as `read` says (NOT_FOUND when missing, another tenant's, or
    /// deleted unless the read takes deleted rows too).
    pub async fn fetch<T>(&self, conn: &mut PgConnection, id: i64, read: Read) -> Result<T, Error>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let sql = format!(
            "SELECT {} FROM {} WHERE id = $1{}{}",
            self.select,
            self.name,
            if read.deleted_too {
                ""
            } else {
                " AND deleted_at IS NULL"
            },
            if read.lock { " FOR UPDATE" } else { "" },
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(|e| Error::from_sqlx(self.domain, e))?
            .ok_or_else(|| self.not_found(id))
    }

    /// A read of row `id` of `tenant_id` in its own transaction: a Get reads
    /// [`Read::live_or_deleted`] (AIP-164: a soft-deleted resource is returned with its
    /// `delete_time`), anything that acts on the row reads [`Read::live`].
    pub async fn get<T>(
        &self,
        db: &crate::Db,
        tenant_id: i64,
        id: i64,
        read: Read,
    ) -> Result<T, Error>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        require_id(self.domain, "id", id)?;
        let mut tx = db.begin(tenant_id).await?;
        let row = self.fetch(&mut tx, id, read).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Soft-deletes (AIP-164) or restores row `id` and returns it as it is afterwards.
    /// Deleting a deleted row is NOT_FOUND; undeleting a live one is ALREADY_EXISTS.
    pub async fn set_deleted<T>(
        &self,
        tx: &mut TenantTx,
        id: i64,
        change: SoftDelete<'_>,
    ) -> Result<T, Error>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin + Versioned,
    {
        self.set_deleted_if(tx, id, change, |_| Ok::<(), Error>(()))
            .await
    }

    /// [`Table::set_deleted`] once `guard` approves the row as it is.
    pub async fn set_deleted_if<T, E>(
        &self,
        tx: &mut TenantTx,
        id: i64,
        change: SoftDelete<'_>,
        guard: impl FnOnce(&T) -> Result<(), E>,
    ) -> Result<T, E>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin + Versioned,
        E: From<Error>,
    {
        require_id(self.domain, "id", id)?;
        let (delete, etag) = match change {
            SoftDelete::Delete { etag } => (true, etag),
            SoftDelete::Undelete => (false, ""),
        };
        let read = if delete {
            Read::live()
        } else {
            Read::live_or_deleted()
        };
        let row: T = self.fetch(tx, id, read.for_update()).await?;
        if !delete && !row.deleted() {
            return Err(Error::new(
                self.domain,
                Kind::AlreadyExists {
                    reason: "NOT_DELETED",
                    message: format!("{} {id} is not deleted", self.what),
                },
            )
            .into());
        }
        check_etag(self.domain, etag, row.version())?;
        guard(&row)?;
        crate::soft_delete::set_deleted(tx, self.domain, self.name, id, delete).await?;
        Ok(self.fetch(tx, id, Read::live_or_deleted()).await?)
    }

    /// Refuses to delete row `id` while live rows of `child` (a trusted table) point at
    /// it through `column`.
    pub async fn refuse_live_children(
        &self,
        conn: &mut PgConnection,
        id: i64,
        child: &'static str,
        column: &'static str,
        children: &str,
    ) -> Result<(), Error> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {child} WHERE {column} = $1 AND deleted_at IS NULL)"
        );
        let has: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(conn)
            .await
            .map_err(|e| Error::from_sqlx(self.domain, e))?;
        if has {
            Err(Error::precondition(
                self.domain,
                "HAS_CHILDREN",
                format!("{} {id} still has {children}; delete them first", self.what),
            ))
        } else {
            Ok(())
        }
    }

    /// Inserts a row of the transaction's tenant and returns its id.
    pub async fn insert(&self, tx: &mut TenantTx, values: Values) -> Result<i64, Error> {
        insert(tx, self.domain, self.name, values).await
    }

    /// Inserts a row of a platform table (one without `tenant_id`, such as a plan
    /// catalogue) and returns its id.
    pub async fn insert_platform(
        &self,
        conn: &mut PgConnection,
        values: Values,
    ) -> Result<i64, Error> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new("INSERT INTO ");
        qb.push(self.name).push(" (");
        for (i, (column, _)) in values.iter().enumerate() {
            if i > 0 {
                qb.push(", ");
            }
            qb.push(*column);
        }
        qb.push(") VALUES (");
        for (i, (_, value)) in values.into_iter().enumerate() {
            if i > 0 {
                qb.push(", ");
            }
            value.push(&mut qb);
        }
        qb.push(") RETURNING id");
        qb.build_query_scalar()
            .fetch_one(conn)
            .await
            .map_err(|e| Error::from_sqlx(self.domain, e))
    }

    /// Sets `values` on row `id`, bumping its version (etag).
    pub async fn update(
        &self,
        conn: &mut PgConnection,
        id: i64,
        values: Values,
    ) -> Result<(), Error> {
        update(conn, self.domain, self.name, id, values).await
    }
}

/// Inserts a row of the transaction's tenant into `table` (a trusted constant) and
/// returns its id.
pub async fn insert(
    tx: &mut TenantTx,
    domain: &'static str,
    table: &'static str,
    values: Values,
) -> Result<i64, Error> {
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
        .map_err(|e| Error::from_sqlx(domain, e))
}

/// Inserts `rows` of the transaction's tenant into `table` (a trusted constant) with
/// one multi-row INSERT; every row holds a value for each of `columns`, in order.
/// Returns how many rows went in. Callers keep batches below PostgreSQL's 65,535
/// bind parameters (rows × (columns + 1)).
pub async fn insert_many(
    tx: &mut TenantTx,
    domain: &'static str,
    table: &'static str,
    columns: &[&'static str],
    rows: Vec<Vec<Val>>,
) -> Result<u64, Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let tenant = tx.tenant_id();
    let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new("INSERT INTO ");
    qb.push(table).push(" (tenant_id");
    for column in columns {
        qb.push(", ").push(*column);
    }
    qb.push(") VALUES ");
    for (i, row) in rows.into_iter().enumerate() {
        if i > 0 {
            qb.push(", ");
        }
        qb.push("(").push_bind(tenant);
        for value in row {
            qb.push(", ");
            value.push(&mut qb);
        }
        qb.push(")");
    }
    qb.build()
        .execute(&mut **tx)
        .await
        .map(|r| r.rows_affected())
        .map_err(|e| Error::from_sqlx(domain, e))
}

/// Sets `values` on row `id` of `table` (a trusted constant, with `updated_at` and
/// `version` columns), bumping its version (etag).
pub async fn update(
    conn: &mut PgConnection,
    domain: &'static str,
    table: &'static str,
    id: i64,
    values: Values,
) -> Result<(), Error> {
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
        .map_err(|e| Error::from_sqlx(domain, e))?;
    Ok(())
}

/// INVALID_ARGUMENT unless `id` is a positive id.
pub fn require_id(domain: &'static str, field: &str, id: i64) -> Result<(), Error> {
    if id > 0 {
        Ok(())
    } else {
        Err(Error::invalid(domain, field, "must be a positive id"))
    }
}

/// A column value on its way into an INSERT or UPDATE.
#[derive(Clone, Debug)]
pub enum Val {
    /// Text; `None` is NULL.
    Text(Option<String>),
    /// A 64-bit integer.
    Int(Option<i64>),
    /// A 32-bit integer.
    Int32(Option<i32>),
    /// An exact decimal.
    Decimal(Option<rust_decimal::Decimal>),
    /// A boolean.
    Bool(bool),
    /// A date.
    Date(Option<chrono::NaiveDate>),
    /// A point in time.
    Timestamp(Option<chrono::DateTime<chrono::Utc>>),
    /// A JSON document.
    Json(serde_json::Value),
    /// A JSON document or NULL.
    OptJson(Option<serde_json::Value>),
    /// A text array (`text[]`).
    TextList(Vec<String>),
}

impl Val {
    /// Trimmed text; empty is NULL.
    pub fn text(s: &str) -> Val {
        let s = s.trim();
        Val::Text((!s.is_empty()).then(|| s.to_owned()))
    }

    fn push(self, qb: &mut sqlx::QueryBuilder<sqlx::Postgres>) {
        match self {
            Val::Text(v) => qb.push_bind(v),
            Val::Int(v) => qb.push_bind(v),
            Val::Int32(v) => qb.push_bind(v),
            Val::Decimal(v) => qb.push_bind(v),
            Val::Bool(v) => qb.push_bind(v),
            Val::Date(v) => qb.push_bind(v),
            Val::Timestamp(v) => qb.push_bind(v),
            Val::Json(v) => qb.push_bind(sqlx::types::Json(v)),
            Val::OptJson(v) => qb.push_bind(v.map(sqlx::types::Json)),
            Val::TextList(v) => qb.push_bind(v),
        };
    }
}

/// Columns (trusted constants) and their values.
pub type Values = Vec<(&'static str, Val)>;

/// Converts the fields of a resource named in `fields` into column values with
/// `convert`, collecting a field violation (`<prefix>.<field>`) for each that fails;
/// any violation makes the whole call INVALID_ARGUMENT in `domain`.
pub fn values_of(
    domain: &'static str,
    prefix: &str,
    fields: &[&str],
    mut convert: impl FnMut(&str) -> Result<Option<(&'static str, Val)>, String>,
) -> Result<Values, Error> {
    let mut values = Vec::new();
    let mut violations = Vec::new();
    for field in fields {
        match convert(field) {
            Ok(Some(value)) => values.push(value),
            Ok(None) => {}
            Err(description) => violations.push(FieldViolation::new(
                format!("{prefix}.{field}"),
                description,
            )),
        }
    }
    if violations.is_empty() {
        Ok(values)
    } else {
        Err(Error::new(domain, Kind::Invalid(violations)))
    }
}

/// Whether row `id` of `table` (a trusted constant) is live, key-share locking it for
/// the rest of the transaction. That lock conflicts with the `FOR UPDATE` a soft delete
/// takes but not with ordinary updates, so the parent cannot be deleted between this
/// check and the commit of the row that points at it.
pub async fn lock_live(
    conn: &mut PgConnection,
    domain: &'static str,
    table: &'static str,
    id: i64,
) -> Result<bool, Error> {
    let sql = format!("SELECT id FROM {table} WHERE id = $1 AND deleted_at IS NULL FOR KEY SHARE");
    let found: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(|e| Error::from_sqlx(domain, e))?;
    Ok(found.is_some())
}
