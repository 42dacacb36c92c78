//! What every handler shares.

use std::sync::Arc;

use fusion_db::Db;
use fusion_service::standard::Kit;

use crate::AiMarketingConfig;
use crate::refs::Refs;

/// Database, configuration, the clients of other contexts and the standard-methods kit.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Application-role pool.
    pub db: Db,
    /// Settings.
    pub config: Arc<AiMarketingConfig>,
    /// Identity, crm and property, read as the caller.
    pub refs: Refs,
    /// What the standard methods of every ai-marketing resource share.
    pub kit: Kit,
}

impl AppState {
    /// Bundles the parts.
    pub fn new(db: Db, config: Arc<AiMarketingConfig>, refs: Refs) -> Self {
        let kit = Kit {
            db: db.clone(),
            pages: fusion_db::page::PageTokenCodec::new(&config.service.page_token_secret),
            api: fusion_service::api::Api::new(crate::DOMAIN),
            request_ids: crate::store::REQUEST_IDS,
            retention: config.purge_retention,
        };
        Self {
            db,
            config,
            refs,
            kit,
        }
    }
}
