//! Duplicate groups: live leads or contacts of the caller's tenant sharing a normalised
//! email or an E.164 phone, found with the per-tenant indexes on both.

use fusion_db::{Error, TenantTx};

use crate::DOMAIN;

/// Records that share one match key.
#[derive(sqlx::FromRow)]
pub(crate) struct Group {
    /// `email` or `phone`.
    pub reason: String,
    /// The normalised email or the E.164 phone they share.
    pub match_key: String,
    /// Their ids, oldest first.
    pub ids: Vec<i64>,
}

/// Up to `limit` groups of `table` (`crm.leads` or `crm.contacts`, a trusted constant)
/// after the keyset position `after` (reason, match key), ordered by reason then key.
pub(crate) async fn groups(
    tx: &mut TenantTx,
    table: &'static str,
    after: (&str, &str),
    limit: i64,
) -> Result<Vec<Group>, Error> {
    let sql = format!(
        "SELECT reason, match_key, ids FROM (
             SELECT 'email' AS reason, email_normalized AS match_key,
                    array_agg(id ORDER BY created_at, id) AS ids
               FROM {table}
              WHERE tenant_id = $1 AND deleted_at IS NULL AND email_normalized IS NOT NULL
              GROUP BY email_normalized HAVING count(*) > 1
             UNION ALL
             SELECT 'phone', phone_e164, array_agg(id ORDER BY created_at, id)
               FROM {table}
              WHERE tenant_id = $1 AND deleted_at IS NULL AND phone_e164 IS NOT NULL
              GROUP BY phone_e164 HAVING count(*) > 1
         ) AS groups
         WHERE (reason, match_key) > ($2, $3)
         ORDER BY reason, match_key
         LIMIT $4"
    );
    let tenant = tx.tenant_id();
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .fetch_all(&mut **tx)
        .await
        .map_err(|e| Error::from_sqlx(DOMAIN, e))
}
