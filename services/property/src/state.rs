//! What every handler shares.

use std::sync::Arc;

use fusion_db::Db;
use fusion_db::page::PageTokenCodec;
use fusion_service::standard::Kit;

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
    /// What the standard methods of every property resource share.
    pub kit: Kit,
}

impl AppState {
    /// Bundles the parts.
    pub fn new(db: Db, config: Arc<PropertyConfig>, events: LotEvents, media: MediaStore) -> Self {
        let pages = PageTokenCodec::new(&config.service.page_token_secret);
        let kit = Kit {
            db: db.clone(),
            pages: pages.clone(),
            api: crate::api::API,
            request_ids: crate::api::REQUEST_IDS,
            retention: config.purge_retention,
        };
        Self {
            kit,
            db,
            config,
            pages,
            events,
            media,
        }
    }
}
