//! What every handler shares.

use std::sync::Arc;

use fusion_db::Db;
use fusion_db::page::PageTokenCodec;
use fusion_service::standard::Kit;

use crate::PropertyConfig;
use crate::deals::Deals;
use crate::events::LotEvents;
use crate::media_store::MediaStore;

/// Database, configuration, the page-token codec, the lot event feed, the media store
/// and crm's deals.
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
    /// Crm, for the deals holds and reservations are for.
    pub deals: Deals,
}

impl AppState {
    /// Bundles the parts.
    pub fn new(
        db: Db,
        config: Arc<PropertyConfig>,
        events: LotEvents,
        media: MediaStore,
        deals: Deals,
    ) -> Self {
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
            deals,
        }
    }
}
