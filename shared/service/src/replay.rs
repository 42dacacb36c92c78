//! AIP-155 request ids for custom methods (`WinDeal`, `CompleteTask`, ...): the same
//! dance as the kit's Create, written once.
//!
//! A custom method with a side effect opens its tenant transaction with [`begin`]: a
//! retry with the same request id gets the first call's response back
//! ([`Begun::Replayed`]) without acting again, and the same id with a different
//! request is INVALID_ARGUMENT (`REQUEST_ID_REUSED`). Otherwise it acts in the
//! [`Attempt`]'s transaction (the attempt dereferences to the `TenantTx`) and ends with
//! [`Attempt::commit`], which saves the response under the id in that same
//! transaction, so the effect and the saved response commit together or not at all.
//! Ids are kept for [`fusion_db::idempotency::RETENTION`].
//!
//! ```ignore
//! let mut tx = match replay::begin(&state.kit, tenant, "WinDeal", key).await? {
//!     Begun::Replayed(deal) => return Ok(deal),
//!     Begun::Fresh(attempt) => attempt,
//! };
//! // ... act with &mut tx ...
//! tx.commit(deal).await
//! ```

use std::ops::{Deref, DerefMut};

use fusion_db::idempotency::{RequestIds, RequestKey};
use fusion_db::{Error, TenantTx};

use crate::standard::Kit;

/// How [`begin`] opened a custom method's call.
#[derive(Debug)]
pub enum Begun<M> {
    /// A retry: the response the first call with this request id returned.
    Replayed(M),
    /// A first call (or one without a request id): act in this transaction.
    Fresh(Attempt),
}

/// A custom method's tenant transaction, remembering the call's request id.
#[derive(Debug)]
pub struct Attempt {
    tx: TenantTx,
    ids: RequestIds,
    method: &'static str,
    key: Option<RequestKey>,
}

/// Opens `method`'s transaction in the caller's tenant and replays an earlier call
/// with the same request id, if there was one (locking the id until the transaction
/// ends, so a concurrent retry waits for the first call). `key` is `None` when the
/// request carried no request id: nothing is replayed or saved.
pub async fn begin<M: prost::Message + Default>(
    kit: &Kit,
    tenant_id: i64,
    method: &'static str,
    key: Option<RequestKey>,
) -> Result<Begun<M>, Error> {
    let mut tx = kit.db.begin(tenant_id).await?;
    if let Some(saved) = kit.request_ids.replay(&mut tx, method, key).await? {
        return Ok(Begun::Replayed(saved));
    }
    Ok(Begun::Fresh(Attempt {
        tx,
        ids: kit.request_ids,
        method,
        key,
    }))
}

impl Attempt {
    /// Saves `response` under the request id (if any) and commits; returns it.
    pub async fn commit<M: prost::Message>(mut self, response: M) -> Result<M, Error> {
        self.ids
            .remember(&mut self.tx, self.method, self.key, &response)
            .await?;
        self.tx.commit().await?;
        Ok(response)
    }
}

impl Deref for Attempt {
    type Target = TenantTx;

    fn deref(&self) -> &TenantTx {
        &self.tx
    }
}

impl DerefMut for Attempt {
    fn deref_mut(&mut self) -> &mut TenantTx {
        &mut self.tx
    }
}
