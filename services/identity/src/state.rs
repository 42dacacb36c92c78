//! What every handler shares.

use std::sync::Arc;

use fusion_db::Db;
use fusion_db::idempotency::RequestIds;
use fusion_db::page::PageTokenCodec;
use fusion_service::api::Api;
use fusion_service::standard::Kit;

use crate::auth::keys::KeyRing;
use crate::auth::password::Hasher;
use crate::{DOMAIN, IdentityConfig};

/// Database, configuration, signing keys, the page-token codec and the password hasher.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Application-role pool.
    pub db: Db,
    /// Settings.
    pub config: Arc<IdentityConfig>,
    /// Signing keys.
    pub keys: Arc<KeyRing>,
    /// Signs and checks List page tokens.
    pub pages: PageTokenCodec,
    /// What the standard methods of every identity resource share; its retention is
    /// the purge job's (`IDENTITY_PURGE_RETENTION_DAYS`), so `purge_time` tells the truth.
    pub kit: Kit,
    /// Hashes and verifies passwords on the blocking pool, a bounded number at once.
    pub hasher: Hasher,
}

impl AppState {
    /// Bundles the parts.
    pub fn new(db: Db, config: Arc<IdentityConfig>, keys: Arc<KeyRing>) -> Self {
        let pages = PageTokenCodec::new(&config.service.page_token_secret);
        let kit = Kit {
            db: db.clone(),
            pages: pages.clone(),
            api: Api::new(DOMAIN),
            request_ids: RequestIds::new(DOMAIN, "identity.idempotency_keys"),
            retention: config.purge_retention,
        };
        let hasher = Hasher::new(&config.hashing);
        Self {
            kit,
            hasher,
            db,
            config,
            keys,
            pages,
        }
    }
}
