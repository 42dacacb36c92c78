//! The ranked search over a tenant's live leads, contacts and deals: pg_trgm similarity
//! per field, served by the trigram indexes, in keyset pages over (score, kind, id).

use fusion_db::{Error, TenantTx};

use crate::DOMAIN;

/// The candidates of each kind with their per-field scores; `$1` is the query, `$2`
/// its lower-cased form, `$3` its digits ('' when it has fewer than 4), `$4` the tenant,
/// `$5` the kinds to search, `$6` whether the caller may read contacts (a deal shows
/// its contact's email, phone and company only then).
const CANDIDATES: &str = "
    SELECT 'lead'::text AS kind, l.id, l.full_name AS display_name, l.email, l.phone,
           NULL::text AS company,
           GREATEST(similarity(l.full_name, $1), word_similarity($1, l.full_name)) AS s_name,
           CASE WHEN l.email_normalized IS NULL THEN 0
                ELSE GREATEST(similarity(l.email_normalized, $2), word_similarity($2, l.email_normalized)) END AS s_email,
           CASE WHEN $3 <> '' AND l.phone_e164 LIKE '%' || $3 || '%' THEN 1 ELSE 0 END AS s_phone,
           0::real AS s_company, 0::real AS s_title
      FROM crm.leads l
     WHERE l.tenant_id = $4 AND l.deleted_at IS NULL AND 'lead' = ANY($5)
       AND (l.full_name % $1 OR $1 <% l.full_name OR l.email_normalized % $2
            OR $2 <% l.email_normalized OR ($3 <> '' AND l.phone_e164 LIKE '%' || $3 || '%'))
    UNION ALL
    SELECT 'contact', c.id, c.full_name, c.email, c.phone, c.company,
           GREATEST(similarity(c.full_name, $1), word_similarity($1, c.full_name)),
           CASE WHEN c.email_normalized IS NULL THEN 0
                ELSE GREATEST(similarity(c.email_normalized, $2), word_similarity($2, c.email_normalized)) END,
           CASE WHEN $3 <> '' AND c.phone_e164 LIKE '%' || $3 || '%' THEN 1 ELSE 0 END,
           CASE WHEN c.company IS NULL THEN 0
                ELSE GREATEST(similarity(c.company, $1), word_similarity($1, c.company)) END,
           0
      FROM crm.contacts c
     WHERE c.tenant_id = $4 AND c.deleted_at IS NULL AND 'contact' = ANY($5)
       AND (c.full_name % $1 OR $1 <% c.full_name OR c.email_normalized % $2
            OR $2 <% c.email_normalized OR c.company % $1 OR $1 <% c.company
            OR ($3 <> '' AND c.phone_e164 LIKE '%' || $3 || '%'))
    UNION ALL
    SELECT 'deal', d.id, d.title,
           CASE WHEN $6 THEN c.email END, CASE WHEN $6 THEN c.phone END,
           CASE WHEN $6 THEN c.company END,
           0, 0, 0, 0,
           GREATEST(similarity(d.title, $1), word_similarity($1, d.title))
      FROM crm.deals d
      LEFT JOIN crm.contacts c
             ON c.tenant_id = d.tenant_id AND c.id = d.contact_id AND c.deleted_at IS NULL
     WHERE d.tenant_id = $4 AND d.deleted_at IS NULL AND 'deal' = ANY($5)
       AND (d.title % $1 OR $1 <% d.title)";

/// One record found, with its score per field.
#[derive(sqlx::FromRow)]
pub(crate) struct Hit {
    pub kind: String,
    pub id: i64,
    pub display_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub score: f64,
    pub s_name: f64,
    pub s_email: f64,
    pub s_phone: f64,
    pub s_company: f64,
    pub s_title: f64,
}

/// What to search for.
pub(crate) struct Query<'a> {
    /// The query as typed (trimmed).
    pub text: &'a str,
    /// Its digits worth matching against phones ('' for none).
    pub phone_digits: &'a str,
    /// The kinds to search (`lead`, `contact`, `deal`).
    pub kinds: &'a [String],
    /// Whether a deal shows its contact's email, phone and company.
    pub contact_details: bool,
    /// The keyset position after which the page starts: (score, kind, id).
    pub after: (f64, &'a str, i64),
    /// How many hits to read.
    pub limit: i64,
}

/// Up to `q.limit` hits after `q.after`, best first.
pub(crate) async fn hits(tx: &mut TenantTx, q: &Query<'_>) -> Result<Vec<Hit>, Error> {
    let sql = format!(
        "SELECT *, GREATEST(s_name, s_email, s_phone, s_company, s_title)::float8 AS score
               FROM (SELECT kind, id, display_name, email, phone, company,
                            s_name::float8, s_email::float8, s_phone::float8,
                            s_company::float8, s_title::float8
                       FROM ({CANDIDATES}) AS candidates) AS scored
              WHERE (GREATEST(s_name, s_email, s_phone, s_company, s_title)::float8 < $7
                     OR (GREATEST(s_name, s_email, s_phone, s_company, s_title)::float8 = $7
                         AND (kind, id) > ($8, $9)))
              ORDER BY score DESC, kind, id
              LIMIT $10"
    );
    let tenant = tx.tenant_id();
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(q.text)
        .bind(q.text.to_lowercase())
        .bind(q.phone_digits)
        .bind(tenant)
        .bind(q.kinds)
        .bind(q.contact_details)
        .bind(q.after.0)
        .bind(q.after.1)
        .bind(q.after.2)
        .bind(q.limit)
        .fetch_all(&mut **tx)
        .await
        .map_err(|e| Error::from_sqlx(DOMAIN, e))
}
