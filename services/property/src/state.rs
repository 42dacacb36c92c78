//! What every handler shares.

use std::sync::Arc;

use fusion_db::Db;
use fusion_db::page::PageTokenCodec;

use crate::PropertyConfig;
use crate::events::LotEvents;
use crate::media_store::MediaStore;

/// Database, configuration, the page-token codec, the lot event feed and the media store.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Application-role pool.
    pub db: Db,
    /// Settings.
    pub config: Arc<PropertyConfig>,
    /// Signs and checks List page tokens.
    pub pages: PageTokenCodec,
    /// Lot status changes committed by any replica.
    pub events: LotEvents,
    /// Where media bytes live.
    pub media: MediaStore,
}

impl AppState {
    /// Bundles the parts.
    pub fn new(db: Db, config: Arc<PropertyConfig>, events: LotEvents, media: MediaStore) -> Self {
        let pages = PageTokenCodec::new(&config.service.page_token_secret);
        Self {
            db,
            config,
            pages,
            events,
            media,
        }
    }
}
