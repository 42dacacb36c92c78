//! MergeLeads and MergeContacts: duplicates folded into a survivor, in one transaction.
//!
//! Survivorship: the survivor keeps every value it has; each of its empty fields takes
//! the first non-empty value among the merged records, in the order the caller listed
//! them (a phone comes with its E.164 form); tags are united in that order; custom
//! fields are united by name, the survivor's (then the earlier record's) winning. Notes,
//! tasks and the records that point at a merged record are re-pointed to the survivor;
//! the merged records are soft-deleted with `merged_into_id` set, so the merge can be
//! inspected (and the merged records cannot be undeleted into a second copy).
//!
//! Every row involved is locked in id order first, so merges that overlap serialise
//! instead of deadlocking. A dry run does all of it and rolls back, so its answer is
//! exactly what a real merge would have done at that moment.

use fusion_db::TenantTx;
use fusion_db::resource::Read;
use fusion_db::resource::{Table, Versioned};
use fusion_tenancy::TenantContext;

use crate::error::CrmError;
use crate::store::REQUEST_IDS;
use crate::{AppState, DOMAIN};

/// The most records one merge folds into its survivor.
const MAX_MERGED: usize = 50;

/// What differs between merging leads and merging contacts.
pub(crate) struct Kind {
    /// The record's table.
    pub table: Table,
    /// Its name in `notable_type` / `taskable_type`.
    pub subject: &'static str,
    /// Nullable columns a survivor fills from the merged records (the phone pair apart).
    pub fill: &'static [&'static str],
    /// Other tables' columns that point at the record: (table, column).
    pub pointers: &'static [(&'static str, &'static str)],
    /// Columns that travel together (the first is the one that says whether the group
    /// is set): the survivor takes all of them from the first merged record that has
    /// them, when it has none.
    pub groups: &'static [&'static [&'static str]],
}

/// How many rows a merge re-pointed (or would have).
#[derive(Debug, Default)]
pub(crate) struct Repointed {
    pub notes: i32,
    pub tasks: i32,
    /// Per entry of [`Kind::pointers`], in order.
    pub pointers: Vec<i32>,
}

/// Checks a merge request: a survivor and 1 to 50 distinct other records.
pub(crate) fn check_request(survivor: i64, merged: &[i64]) -> Result<Vec<i64>, CrmError> {
    fusion_db::resource::require_id(DOMAIN, "survivor_id", survivor)?;
    if merged.is_empty() || merged.len() > MAX_MERGED {
        return Err(CrmError::invalid(
            "merged_ids",
            format!("name 1 to {MAX_MERGED} records to merge"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for id in merged {
        if *id <= 0 || *id == survivor || !seen.insert(*id) {
            return Err(CrmError::invalid(
                "merged_ids",
                "must be distinct positive ids, none of them the survivor",
            ));
        }
    }
    Ok(merged.to_vec())
}

/// What a merge call asks for.
pub(crate) struct Request<'a> {
    pub method: &'static str,
    pub survivor_id: i64,
    pub merged_ids: &'a [i64],
    pub etag: &'a str,
    pub dry_run: bool,
    pub request_id: Option<fusion_db::idempotency::RequestKey>,
}

/// Runs a merge call: checks it, replays a saved response under its request id (none
/// for a dry run), merges, builds the response with `respond` from the survivor as it
/// now is, the re-pointed counts and the merged ids, then commits (saving the response)
/// or, for a dry run, rolls everything back.
pub(crate) async fn run<R, M>(
    state: &AppState,
    ctx: &TenantContext,
    kind: &Kind,
    r: Request<'_>,
    respond: impl FnOnce(R, Repointed, Vec<i64>) -> M,
) -> Result<M, CrmError>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin + Versioned,
    M: prost::Message + Default,
{
    let merged = check_request(r.survivor_id, r.merged_ids)?;
    let request_id = if r.dry_run { None } else { r.request_id };
    let mut tx = state.db.begin(ctx.tenant_id).await?;
    if let Some(saved) = REQUEST_IDS.replay(&mut tx, r.method, request_id).await? {
        return Ok(saved);
    }
    // One merge at a time per tenant: a lead merge updates contacts and a contact merge
    // updates leads, so two concurrent merges could otherwise lock in opposite orders.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('crm.merge'), $1::int)")
        .bind(i32::try_from(ctx.tenant_id % i64::from(i32::MAX)).unwrap_or(0))
        .execute(&mut *tx)
        .await?;
    let mut all = merged.clone();
    all.push(r.survivor_id);
    all.sort_unstable();
    for id in &all {
        let row: R = kind
            .table
            .fetch(&mut tx, *id, Read::live().for_update())
            .await?;
        if *id == r.survivor_id {
            fusion_db::resource::check_etag(DOMAIN, r.etag, row.version())?;
        }
    }
    fill_survivor(&mut tx, kind, r.survivor_id, &merged).await?;
    refuse_oversized(&mut tx, kind, r.survivor_id).await?;
    let repointed = repoint(&mut tx, kind, r.survivor_id, &merged).await?;
    // `table` is a constant of this module's callers.
    let sql = format!(
        "UPDATE {} SET deleted_at = now(), merged_into_id = $1, updated_at = now(),
                version = version + 1
          WHERE id = ANY($2)",
        kind.table.name
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(r.survivor_id)
        .bind(&merged)
        .execute(&mut *tx)
        .await?;
    let survivor: R = kind
        .table
        .fetch(&mut tx, r.survivor_id, Read::live())
        .await?;
    let response = respond(survivor, repointed, merged);
    if r.dry_run {
        tx.rollback().await?;
    } else {
        REQUEST_IDS
            .remember(&mut tx, r.method, request_id, &response)
            .await?;
        tx.commit().await?;
    }
    Ok(response)
}

/// Fills the survivor's empty fields, unites tags and custom fields.
async fn fill_survivor(
    tx: &mut TenantTx,
    kind: &Kind,
    survivor: i64,
    merged: &[i64],
) -> Result<(), CrmError> {
    let table = kind.table.name;
    // The first merged record (in the caller's order) with a value in `col`.
    let first = |col: &str| {
        format!(
            "(SELECT m.{col} FROM {table} m WHERE m.id = ANY($2) AND m.{col} IS NOT NULL
               ORDER BY array_position($2, m.id) LIMIT 1)"
        )
    };
    let mut sets: Vec<String> = kind
        .fill
        .iter()
        .map(|col| format!("{col} = COALESCE(s.{col}, {})", first(col)))
        .collect();
    for group in std::iter::once(&["phone", "phone_e164"][..]).chain(kind.groups.iter().copied()) {
        let lead = group[0];
        let columns = group.join(", ");
        let picked: Vec<String> = group
            .iter()
            .map(|c| format!("CASE WHEN s.{lead} IS NULL THEN p.{c} ELSE s.{c} END"))
            .collect();
        let from_merged: Vec<String> = group.iter().map(|c| format!("m.{c}")).collect();
        sets.push(format!(
            "({columns}) = (SELECT {}
                              FROM (SELECT NULL) AS one
                              LEFT JOIN LATERAL (
                                   SELECT {} FROM {table} m
                                    WHERE m.id = ANY($2) AND m.{lead} IS NOT NULL
                                    ORDER BY array_position($2, m.id) LIMIT 1) p ON true)",
            picked.join(", "),
            from_merged.join(", ")
        ));
    }
    // Sources in order: the survivor (0), then the merged records as listed.
    let sources = format!(
        "SELECT 0 AS ord, s.tags AS tags, s.custom_fields AS custom_fields
         UNION ALL
         SELECT array_position($2, m.id), m.tags, m.custom_fields FROM {table} m
          WHERE m.id = ANY($2)"
    );
    sets.push(format!(
        "tags = (SELECT COALESCE(jsonb_agg(tag ORDER BY pos), '[]'::jsonb)
                   FROM (SELECT t.tag, min(src.ord * 100000 + t.idx) AS pos
                           FROM ({sources}) AS src,
                                jsonb_array_elements_text(src.tags) WITH ORDINALITY AS t(tag, idx)
                          GROUP BY t.tag) AS united)"
    ));
    sets.push(format!(
        "custom_fields = jsonb_build_object('fields', (
            SELECT COALESCE(jsonb_agg(field ORDER BY pos), '[]'::jsonb)
              FROM (SELECT DISTINCT ON (f.field->>'name') f.field, src.ord * 100000 + f.idx AS pos
                      FROM ({sources}) AS src,
                           jsonb_array_elements(src.custom_fields->'fields') WITH ORDINALITY AS f(field, idx)
                     ORDER BY f.field->>'name', src.ord, f.idx) AS united))"
    ));
    let sql = format!(
        "UPDATE {table} AS s SET {}, updated_at = now(), version = s.version + 1 WHERE s.id = $1",
        sets.join(",\n ")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(survivor)
        .bind(merged)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// FAILED_PRECONDITION when the united tags or custom fields exceed what a record may
/// hold (50 tags, 100 custom fields); the caller's transaction is then rolled back.
async fn refuse_oversized(tx: &mut TenantTx, kind: &Kind, survivor: i64) -> Result<(), CrmError> {
    let sql = format!(
        "SELECT jsonb_array_length(tags), jsonb_array_length(custom_fields->'fields')
           FROM {} WHERE id = $1",
        kind.table.name
    );
    let (tags, fields): (i32, i32) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(survivor)
        .fetch_one(&mut **tx)
        .await?;
    if tags > 50 || fields > 100 {
        return Err(CrmError::MergeTooLarge { tags, fields });
    }
    Ok(())
}

/// Points notes, tasks and the kind's pointers from the merged records at the survivor.
async fn repoint(
    tx: &mut TenantTx,
    kind: &Kind,
    survivor: i64,
    merged: &[i64],
) -> Result<Repointed, CrmError> {
    let mut counts = Repointed::default();
    for (table, type_col, id_col) in [
        ("crm.notes", "notable_type", "notable_id"),
        ("crm.tasks", "taskable_type", "taskable_id"),
    ] {
        let sql = format!(
            "UPDATE {table} SET {id_col} = $1, updated_at = now(), version = version + 1
              WHERE {type_col} = $3 AND {id_col} = ANY($2)"
        );
        let n = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(survivor)
            .bind(merged)
            .bind(kind.subject)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        if table == "crm.notes" {
            counts.notes = n;
        } else {
            counts.tasks = n;
        }
    }
    for (table, column) in kind.pointers {
        let sql = format!(
            "UPDATE {table} SET {column} = $1, updated_at = now(), version = version + 1
              WHERE {column} = ANY($2)"
        );
        let n = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(survivor)
            .bind(merged)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        counts.pointers.push(i32::try_from(n).unwrap_or(i32::MAX));
    }
    Ok(counts)
}

/// Merging leads: deals and converted contacts follow the survivor, and so do leads
/// merged earlier into a lead merged now.
pub(crate) const LEADS: Kind = Kind {
    table: crate::store::leads::TABLE,
    subject: "lead",
    fill: &[
        "first_name",
        "email",
        "address",
        "suburb",
        "state",
        "postcode",
        "country",
        "source",
        "source_detail",
        "stage",
        "score",
        "notes",
        "last_contacted_at",
        "assigned_to",
    ],
    pointers: &[
        ("crm.deals", "lead_id"),
        ("crm.contacts", "lead_id"),
        ("crm.leads", "merged_into_id"),
    ],
    // A converted lead passes its conversion on, so the survivor is not converted twice.
    groups: &[&["converted_at", "converted_contact_id", "converted_deal_id"]],
};

/// Merging contacts: deals and the leads converted into them follow the survivor, and
/// so do contacts merged earlier into a contact merged now.
pub(crate) const CONTACTS: Kind = Kind {
    table: crate::store::contacts::TABLE,
    subject: "contact",
    fill: &[
        "lead_id",
        "first_name",
        "email",
        "company",
        "position",
        "address",
        "suburb",
        "state",
        "postcode",
        "country",
        "contact_type",
        "notes",
        "last_contacted_at",
    ],
    pointers: &[
        ("crm.deals", "contact_id"),
        ("crm.leads", "converted_contact_id"),
        ("crm.contacts", "merged_into_id"),
    ],
    groups: &[],
};
