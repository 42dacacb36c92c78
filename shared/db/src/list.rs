//! The List query every resource shares: filter + order + keyset page + total size.

use futures::TryStreamExt as _;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder, Row};

use crate::Error;
use crate::filter::{self, FieldSpec};
use crate::order::{OrderTerm, parse_order_by};
use crate::page::{self, PageTokenCodec, TokenError};

/// Most bytes of row data one page carries, whatever its page size: a page stops
/// before the row that would pass it (it always holds at least one row) and continues
/// with a `next_page_token` from there. 3 MiB leaves room for the page's encoding
/// (tags, etags, computed fields) under the 4 MiB a gRPC client accepts by default
/// (tonic, grpc-go, grpc-java), and under the 8 MiB a Fusion server encodes at most.
pub const MAX_PAGE_BYTES: usize = 3 * 1024 * 1024;

/// What a resource's List reads from, and what callers may filter and order on.
#[derive(Clone, Copy, Debug)]
pub struct ListSpec {
    /// Schema-qualified table, e.g. `identity.users`.
    pub table: &'static str,
    /// The select list (columns the row type reads).
    pub select: &'static str,
    /// Fields the filter may name.
    pub fields: &'static [FieldSpec],
    /// Fields `order_by` may name (each also in `fields`).
    pub order_fields: &'static [&'static str],
    /// Order when `order_by` is empty.
    pub default_order: &'static str,
    /// Whether the table has `deleted_at` (hidden unless `show_deleted`).
    pub soft_delete: bool,
    /// Whether rows carry `tenant_id` (then the query filters on it explicitly, on top
    /// of row-level security).
    pub tenant_scoped: bool,
}

/// The standard List request fields (AIP-132/158/160).
#[derive(Clone, Debug)]
pub struct ListParams {
    /// 0 = default, clamped to the maximum, negative is invalid.
    pub page_size: i32,
    /// From the previous page.
    pub page_token: String,
    /// AIP-160 filter.
    pub filter: String,
    /// `field [desc], ...`.
    pub order_by: String,
    /// Include soft-deleted rows.
    pub show_deleted: bool,
    /// Skip counting the matching rows (`total_size` is then 0): for callers that read
    /// every page anyway, such as an export.
    pub skip_total: bool,
    /// Most bytes of row data in the page ([`MAX_PAGE_BYTES`] unless a caller needs
    /// less).
    pub max_bytes: usize,
}

impl Default for ListParams {
    fn default() -> Self {
        Self::new(0, String::new(), String::new(), String::new(), false)
    }
}

impl ListParams {
    /// The standard List request fields, as every List request carries them.
    pub fn new(
        page_size: i32,
        page_token: String,
        filter: String,
        order_by: String,
        show_deleted: bool,
    ) -> Self {
        Self {
            page_size,
            page_token,
            filter,
            order_by,
            show_deleted,
            skip_total: false,
            max_bytes: MAX_PAGE_BYTES,
        }
    }
}

/// The bytes a row's values take as PostgreSQL sends them (text as its UTF-8, numbers
/// and times in their binary width), plus a few per value for the encoding around it:
/// close to what the row weighs in the response, and found without decoding it.
fn row_bytes(row: &PgRow) -> usize {
    const PER_VALUE: usize = 8;
    (0..row.len())
        .map(|i| {
            row.try_get_raw(i)
                .ok()
                .and_then(|v| v.as_bytes().ok().map(<[u8]>::len))
                .unwrap_or(0)
                + PER_VALUE
        })
        .sum()
}

/// One page of results.
#[derive(Debug)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Empty on the last page.
    pub next_page_token: String,
    /// Rows matching the filter in all pages.
    pub total_size: i64,
}

/// A value a List's parent column must equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeValue {
    /// An id.
    Int(i64),
    /// A text value (`mediable_type = 'lot'`).
    Text(String),
}

/// The parent a List is confined to, as `column = value` pairs (columns are trusted
/// constants): appended to the WHERE clause with AND, and bound into the page token,
/// so a token made under one parent is refused under another.
pub type Scope<'a> = &'a [(&'static str, ScopeValue)];

/// Runs one page of a List.
///
/// Ordering puts NULLs last in both directions, and the keyset predicate follows the
/// same rule, so paging visits every row exactly once even on nullable columns.
pub async fn list<T>(
    conn: &mut PgConnection,
    domain: &'static str,
    spec: &ListSpec,
    params: &ListParams,
    codec: &PageTokenCodec,
    tenant_id: Option<i64>,
    scope: Option<Scope<'_>>,
) -> Result<Page<T>, Error>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let invalid = |field: &str, msg: String| Error::invalid(domain, field, msg);
    let limit = page::page_size(params.page_size).map_err(|m| invalid("page_size", m))?;
    let expr = filter::parse(&params.filter).map_err(|e| invalid("filter", e.to_string()))?;
    if let Some(expr) = &expr {
        filter::validate(expr, spec.fields).map_err(|e| invalid("filter", e.to_string()))?;
    }
    let order = parse_order_by(
        &params.order_by,
        spec.default_order,
        spec.order_fields,
        spec.fields,
    )
    .map_err(|m| invalid("order_by", m))?;
    let scope_key: String = scope
        .unwrap_or_default()
        .iter()
        .map(|(column, value)| format!("{column}={value:?};"))
        .collect();
    let digest = PageTokenCodec::query_digest(&[
        spec.table,
        params.filter.trim(),
        params.order_by.trim(),
        if params.show_deleted {
            "deleted"
        } else {
            "live"
        },
        &scope_key,
    ]);
    let cursor = if params.page_token.is_empty() {
        None
    } else {
        let cursor = codec
            .decode(&digest, &params.page_token)
            .map_err(|e| match e {
                TokenError::Invalid => invalid("page_token", "not a valid page token".into()),
                TokenError::WrongQuery => invalid(
                    "page_token",
                    "the token belongs to a different filter, order_by, show_deleted or parent"
                        .into(),
                ),
            })?;
        if cursor.len() != order.len() {
            return Err(invalid("page_token", "not a valid page token".into()));
        }
        Some(cursor)
    };

    let push_where = |qb: &mut QueryBuilder<Postgres>| -> Result<(), Error> {
        qb.push(" WHERE TRUE");
        if let (true, Some(tenant)) = (spec.tenant_scoped, tenant_id) {
            qb.push(" AND tenant_id = ").push_bind(tenant);
        }
        if spec.soft_delete && !params.show_deleted {
            qb.push(" AND deleted_at IS NULL");
        }
        if let Some(expr) = &expr {
            qb.push(" AND ");
            filter::push_sql(qb, expr, spec.fields)
                .map_err(|e| invalid("filter", e.to_string()))?;
        }
        for (column, value) in scope.unwrap_or_default() {
            qb.push(" AND ").push(*column).push(" = ");
            match value {
                ScopeValue::Int(v) => qb.push_bind(*v),
                ScopeValue::Text(v) => qb.push_bind(v.clone()),
            };
        }
        Ok(())
    };

    let mut count = QueryBuilder::<Postgres>::new("SELECT count(*) FROM ");
    count.push(spec.table);
    push_where(&mut count)?;
    let total_size: i64 = if params.skip_total {
        0
    } else {
        count
            .build_query_scalar()
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| Error::from_sqlx(domain, e))?
    };

    let mut qb = QueryBuilder::<Postgres>::new("SELECT ");
    qb.push(spec.select);
    qb.push(", ARRAY[");
    for (i, term) in order.iter().enumerate() {
        if i > 0 {
            qb.push(", ");
        }
        qb.push("(").push(term.field.column).push(")::text");
    }
    qb.push("]::text[] AS __cursor FROM ");
    qb.push(spec.table);
    push_where(&mut qb)?;
    if let Some(cursor) = &cursor {
        qb.push(" AND ");
        push_keyset(&mut qb, &order, cursor);
    }
    qb.push(" ORDER BY ");
    for (i, term) in order.iter().enumerate() {
        if i > 0 {
            qb.push(", ");
        }
        qb.push(term.field.column);
        qb.push(if term.desc {
            " DESC NULLS LAST"
        } else {
            " ASC NULLS LAST"
        });
    }
    qb.push(" LIMIT ").push_bind(limit + 1);

    // Rows are read as they arrive, so a page cut short by its byte budget never holds
    // more than the budget (and one row) in memory.
    let mut rows = qb.build().fetch(&mut *conn);
    let mut items = Vec::new();
    let mut last_cursor = None;
    let mut bytes = 0;
    let mut has_more = false;
    while let Some(row) = rows
        .try_next()
        .await
        .map_err(|e| Error::from_sqlx(domain, e))?
    {
        let size = row_bytes(&row);
        if items.len() as i64 == limit || (!items.is_empty() && bytes + size > params.max_bytes) {
            has_more = true;
            break;
        }
        bytes += size;
        last_cursor = Some(
            row.try_get::<Vec<Option<String>>, _>("__cursor")
                .map_err(|e| Error::from_sqlx(domain, e))?,
        );
        items.push(T::from_row(&row).map_err(|e| Error::from_sqlx(domain, e))?);
    }
    drop(rows);
    let next_page_token = match (has_more, last_cursor) {
        (true, Some(cursor)) => codec.encode(&digest, cursor),
        _ => String::new(),
    };
    Ok(Page {
        items,
        next_page_token,
        total_size,
    })
}

/// Rows strictly after `cursor` in `order`:
/// `OR_i ( AND_{j<i} term_j = v_j  AND  term_i after v_i )`, NULLs last.
fn push_keyset(qb: &mut QueryBuilder<Postgres>, order: &[OrderTerm], cursor: &[Option<String>]) {
    qb.push("(");
    for i in 0..order.len() {
        if i > 0 {
            qb.push(" OR ");
        }
        qb.push("(");
        for j in 0..i {
            push_equal(qb, &order[j], &cursor[j]);
            qb.push(" AND ");
        }
        push_after(qb, &order[i], &cursor[i]);
        qb.push(")");
    }
    qb.push(")");
}

fn push_value(qb: &mut QueryBuilder<Postgres>, term: &OrderTerm, value: &str) {
    qb.push_bind(value.to_owned())
        .push("::")
        .push(term.field.kind.sql_type());
}

fn push_equal(qb: &mut QueryBuilder<Postgres>, term: &OrderTerm, value: &Option<String>) {
    match value {
        Some(v) => {
            qb.push(term.field.column).push(" = ");
            push_value(qb, term, v);
        }
        None => {
            qb.push(term.field.column).push(" IS NULL");
        }
    }
}

fn push_after(qb: &mut QueryBuilder<Postgres>, term: &OrderTerm, value: &Option<String>) {
    match value {
        // Nothing sorts after NULL: NULLs come last.
        None => {
            qb.push("FALSE");
        }
        Some(v) => {
            qb.push("(")
                .push(term.field.column)
                .push(if term.desc { " < " } else { " > " });
            push_value(qb, term, v);
            qb.push(" OR ").push(term.field.column).push(" IS NULL)");
        }
    }
}

/// One page of a List in `tenant_id`'s tenant, read in a transaction of its own.
pub async fn tenant_page<T>(
    db: &crate::Db,
    domain: &'static str,
    spec: &ListSpec,
    params: &ListParams,
    codec: &PageTokenCodec,
    tenant_id: i64,
    scope: Option<Scope<'_>>,
) -> Result<Page<T>, Error>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let mut tx = db.begin(tenant_id).await?;
    let page = list::<T>(&mut tx, domain, spec, params, codec, Some(tenant_id), scope).await?;
    tx.commit().await?;
    Ok(page)
}
