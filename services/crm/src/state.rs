//! What every handler shares.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use fusion_db::Db;
use fusion_db::page::PageTokenCodec;
use fusion_service::standard::Kit;

use crate::CrmConfig;
use crate::refs::Refs;

/// Database, configuration, the page-token codec and the clients of other contexts.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Application-role pool.
    pub db: Db,
    /// Settings.
    pub config: Arc<CrmConfig>,
    /// Signs and checks List page tokens.
    pub pages: PageTokenCodec,
    /// Identity and property, for reference checks.
    pub refs: Refs,
    /// Tenants whose default pipeline this process has already made sure of.
    pub(crate) pipelines: Arc<Mutex<HashSet<i64>>>,
    /// What the standard methods of every crm resource share.
    pub kit: Kit,
}

impl AppState {
    /// Bundles the parts.
    pub fn new(db: Db, config: Arc<CrmConfig>, refs: Refs) -> Self {
        let pages = PageTokenCodec::new(&config.service.page_token_secret);
        let kit = Kit {
            db: db.clone(),
            pages: pages.clone(),
            api: fusion_service::api::Api::new(crate::DOMAIN),
            request_ids: crate::store::REQUEST_IDS,
            retention: config.purge_retention,
        };
        Self {
            kit,
            db,
            config,
            pages,
            refs,
            pipelines: Arc::default(),
        }
    }
}
