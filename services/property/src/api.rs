//! The context's error builders and request ids, below every module that uses them
//! (handlers, the kit's state, the stock SQL).

use fusion_db::idempotency::RequestIds;
use fusion_service::api::Api;

use crate::DOMAIN;

/// Errors and checks in this context's domain.
pub(crate) const API: Api = Api::new(DOMAIN);

/// This context's request ids (AIP-155).
pub(crate) const REQUEST_IDS: RequestIds = RequestIds::new(DOMAIN, "property.idempotency_keys");
