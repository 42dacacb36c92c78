//! The start and end every custom method that changes one live row shares (AssignLead,
//! WinDeal, StartTask, SubmitInvoice, ApproveCommission, ...): replay a retry with the
//! request id of a first call (AIP-155), otherwise lock the row and check the caller's
//! etag; then either set some columns and answer ([`Locked::set`]), or write with
//! [`write`] and end with `Attempt::commit`.

use fusion_db::idempotency::RequestKey;
use fusion_db::resource::{Read, Values, Versioned, check_etag};
use fusion_db::{Error, TenantTx};
use fusion_tenancy::TenantContext;

use crate::replay::{self, Attempt, Begun};
use crate::standard::Resource;

/// How a custom method that changes one live row began (see [`lock`]).
pub enum Locked<R: Resource> {
    /// A retry of a call with the same request id: that call's answer.
    Replayed(R::Pb),
    /// A first call: its transaction, and the row as it is, locked.
    Fresh(Attempt, R::Row),
}

/// The start of custom method `method` on live row `id` of `R`: a retry with the
/// request id of a first call gets that call's answer; otherwise the row is locked for
/// the transaction and `etag` (when sent) checked against it.
pub async fn lock<R: Resource>(
    state: &R::State,
    ctx: &TenantContext,
    method: &'static str,
    key: Option<RequestKey>,
    id: i64,
    etag: &str,
) -> Result<Locked<R>, Error> {
    let kit = R::kit(state);
    fusion_db::resource::require_id(kit.api.domain(), "id", id)?;
    let mut tx = match replay::begin(kit, ctx.tenant_id, method, key).await? {
        Begun::Replayed(answer) => return Ok(Locked::Replayed(answer)),
        Begun::Fresh(attempt) => attempt,
    };
    let current: R::Row = R::TABLE
        .fetch(&mut tx, id, Read::live().for_update())
        .await?;
    check_etag(kit.api.domain(), etag, current.version())?;
    Ok(Locked::Fresh(tx, current))
}

impl<R: Resource> Locked<R> {
    /// Ends a custom method that only sets columns of row `id`: `change` returns the
    /// values to set from the row as it is (none: it stays as it is); the row is
    /// written, read back and answered, the answer saved under the request id. A retry
    /// answers as the first call did.
    pub async fn set<F, E>(self, state: &R::State, id: i64, change: F) -> Result<R::Pb, E>
    where
        F: AsyncFnOnce(&mut TenantTx, &R::Row) -> Result<Values, E>,
        E: From<Error>,
    {
        match self {
            Locked::Replayed(answer) => Ok(answer),
            Locked::Fresh(mut tx, current) => {
                let values = change(&mut tx, &current).await?;
                let row = write::<R>(&mut tx, id, values).await?;
                Ok(tx.commit(R::to_pb(state, row)).await?)
            }
        }
    }
}

/// Sets `values` on row `id` of `R` (none: the row stays as it is) and reads it back.
pub async fn write<R: Resource>(
    tx: &mut TenantTx,
    id: i64,
    values: Values,
) -> Result<R::Row, Error> {
    R::TABLE.update(tx, id, values).await?;
    R::TABLE.fetch(tx, id, Read::live()).await
}
