//! Every SQL statement of property: each resource's table, List spec and row, and the
//! statements the handlers, the lot lifecycle and the housekeeping job run. Handlers in
//! [`crate::grpc`] call these and never write SQL themselves.

pub(crate) mod developers;
pub(crate) mod features;
pub(crate) mod lots;
pub(crate) mod media;
pub(crate) mod projects;
pub(crate) mod stages;

use sqlx::PgConnection;

pub(crate) use fusion_db::resource::Table;

use crate::DOMAIN;

/// Whether row `id` of `table` is live, key-share locking it for the rest of the
/// transaction (see [`fusion_db::resource::lock_live`]).
pub(crate) async fn lock_live(
    conn: &mut PgConnection,
    table: &'static str,
    id: i64,
) -> Result<bool, fusion_db::Error> {
    fusion_db::resource::lock_live(conn, DOMAIN, table, id).await
}
