//! What every handler shares.

use std::sync::Arc;

use fusion_db::Db;
use fusion_db::page::PageTokenCodec;

use crate::IdentityConfig;
use crate::auth::keys::KeyRing;

/// Database, configuration, signing keys and the page-token codec.
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
}

impl AppState {
    /// Bundles the parts.
    pub fn new(db: Db, config: Arc<IdentityConfig>, keys: Arc<KeyRing>) -> Self {
        let pages = PageTokenCodec::new(&config.service.page_token_secret);
        Self {
            db,
            config,
            keys,
            pages,
        }
    }
}
