//! The context's shared checks (ids, etags, masks, timestamps: the kit's `Api` in
//! property's domain) and request ids. Reasons of property's own are
//! [`crate::error::PropertyError`].

use fusion_db::idempotency::RequestIds;
use fusion_service::api::Api;

use crate::DOMAIN;

/// The kit's generic checks in this context's domain.
pub(crate) const API: Api = Api::new(DOMAIN);

/// This context's request ids (AIP-155).
pub(crate) const REQUEST_IDS: RequestIds = RequestIds::new(DOMAIN, "property.idempotency_keys");
