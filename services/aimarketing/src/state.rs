//! What every handler shares.

use std::sync::Arc;

use fusion_db::Db;
use fusion_service::standard::Kit;

use crate::AiMarketingConfig;
use crate::allowance::Allowances;
use crate::provider::ChatClient;
use crate::refs::Refs;
use crate::settings::cipher::KeyCipher;

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
    /// The model provider's HTTP client (one connection pool for every provider).
    pub chat: ChatClient,
    /// Seals and opens tenants' provider API keys (`AI_SECRET_KEY`).
    pub cipher: Option<KeyCipher>,
    /// Tenants' monthly token allowances, from their plans.
    pub allowances: Allowances,
}

impl AppState {
    /// Bundles the parts.
    pub fn new(
        db: Db,
        config: Arc<AiMarketingConfig>,
        refs: Refs,
        chat: ChatClient,
        allowances: Allowances,
    ) -> Self {
        let kit = Kit {
            db: db.clone(),
            pages: fusion_db::page::PageTokenCodec::new(&config.service.page_token_secret),
            api: fusion_service::api::Api::new(crate::DOMAIN),
            request_ids: crate::store::REQUEST_IDS,
            retention: config.purge_retention,
        };
        Self {
            db,
            cipher: config.secret_key.clone(),
            config,
            refs,
            kit,
            chat,
            allowances,
        }
    }
}
